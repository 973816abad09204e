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
