"""User-facing errors: every message says what went wrong and what to do about it.

Errors about the caller's settings name the *parameters* to change as ``{parameter}`` placeholders
(classes with ``names_parameters``): ``str(error)`` spells them as the library's parameter names, and
the command line (:func:`provguard.cli.common.user_errors`) as its own flags. Errors about one input
item never do: their messages carry file names, which are shown exactly as they are.
"""
import re

#: ``{parameter_name}`` in a message of an error class with ``names_parameters``
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class ProvguardError(Exception):
    """Base class for errors a user can act on (shown without a traceback by the CLI)."""

    #: whether the message names parameters as ``{parameter}`` placeholders (``{name}``: ``parameter``)
    names_parameters = False
    #: the parameter at fault, when there is one
    parameter: str | None = None

    def message_for(self, flags: dict[str, str] | None = None) -> str:
        """The message with each placeholder spelled as ``flags[parameter]`` (a flag) where given, else as
        the parameter's own name; the plain message for classes that do not name parameters."""
        message = super().__str__()
        if not self.names_parameters:
            return message
        flags = flags or {}

        def spell(match: re.Match) -> str:
            name = self.parameter if match[1] == "name" and self.parameter else match[1]
            return flags.get(name, name)

        return _PLACEHOLDER.sub(spell, message)

    def __str__(self) -> str:
        return self.message_for()


class InputError(ProvguardError):
    """One input item (file, record) cannot be processed; the run goes on with the others."""


class NotApplicable(InputError):
    """A detector cannot look at this item for a legitimate reason (too small for the method, no text):
    not a broken file. Detectors turn it into "not applicable" evidence, never an error row."""


class KeyMaterialError(ProvguardError):
    """A watermark key is missing or unusable (the key itself is never included in the message)."""

    names_parameters = True


class BadArgument(ProvguardError, ValueError):
    """A value passed to a library call (or a command-line option) that cannot work; ``parameter``
    names it, and the message says ``{name}`` where its name belongs."""

    names_parameters = True

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter
