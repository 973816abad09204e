"""User-facing errors: every message says what went wrong and what to do about it."""
import re


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

    The message names parameters as placeholders: ``{name}`` for ``parameter`` (the one at fault) and
    ``{other_parameter}`` for any other it mentions, so that the command line can spell each as its
    own flag (:meth:`message_for`). ``str()`` gives the library wording (the parameter names).
    """

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.message, self.parameter = message, parameter

    def message_for(self, flags: dict[str, str] | None = None) -> str:
        """The message with each placeholder spelled as ``flags[parameter]`` (a flag) where given,
        else as the parameter's own name."""
        flags = flags or {}

        def spell(match: re.Match) -> str:
            name = self.parameter if match[1] == "name" and self.parameter else match[1]
            return flags.get(name, name)

        return _PLACEHOLDER.sub(spell, self.message)

    def __str__(self) -> str:
        return self.message_for()


#: ``{parameter_name}`` in a :class:`BadArgument` message
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
