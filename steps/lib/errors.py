"""The one error type for bad input: it names the parameter so the user knows what to fix."""


class InputError(Exception):
    """Bad user input; `param` is the MLproject parameter (or column) at fault."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message
