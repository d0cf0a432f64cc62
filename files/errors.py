"""The error every reader and writer in `files` raises: worded for the user, naming the file (and line)."""


class DataFileError(Exception):
    """A problem with an input or output file: `path:line: field: message`."""
