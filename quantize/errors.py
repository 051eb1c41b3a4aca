"""The one error the export steps raise, with a message a user can act on."""


class ExportError(RuntimeError):
    """A step of the export failed; `step` names it (merge, convert, quantize, check)."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
