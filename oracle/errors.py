"""The one exception the core raises for input it cannot work with."""


class OracleInputError(ValueError):
    """Input that cannot be solved as given; the message is written for the user who supplied it."""
