"""User-facing errors: every message says what went wrong and what to do about it."""


class ProvguardError(Exception):
    """Base class for errors a user can act on (shown without a traceback by the CLI)."""


class InputError(ProvguardError):
    """One input item (file, record) cannot be processed; the run goes on with the others."""


class NotApplicable(InputError):
    """A detector cannot look at this item for a legitimate reason (too small for the method, no text):
    not a broken file. Detectors turn it into "not applicable" evidence, never an error row."""


class KeyMaterialError(ProvguardError):
    """A watermark key is missing or unusable (the key itself is never included in the message)."""


class BadArgument(ProvguardError, ValueError):
    """A value passed to a library call (or a command-line option) that cannot work.

    ``parameter`` names the library parameter; the message may say ``{name}`` where the parameter's
    name belongs, so the command line can show its own flag instead (:meth:`message_for`). ``str()``
    gives the library wording (the parameter name).
    """

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.message, self.parameter = message, parameter

    def message_for(self, flags: dict[str, str] | None = None) -> str:
        """The message with ``{name}`` spelled as ``flags[parameter]`` (a flag) when given."""
        name = (flags or {}).get(self.parameter, self.parameter) if self.parameter else None
        return self.message.replace("{name}", name) if name else self.message

    def __str__(self) -> str:
        return self.message_for()
