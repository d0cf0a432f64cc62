"""The command line, `apportion`: the edge where files are read and written."""
