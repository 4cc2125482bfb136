"""The one error type users can cause, and its domain subclasses."""


class ApplicationError(Exception):
    """An error the user can fix; ``message`` says how."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class InvalidKit(ApplicationError):
    code = "invalid_kit"


class KitTooLarge(InvalidKit):
    status_code = 413
    code = "kit_too_large"


class InvalidSubmission(ApplicationError):
    code = "invalid_submission"


class InvalidTransition(ApplicationError):
    status_code = 409
    code = "invalid_state"


class InvalidDataset(ApplicationError):
    code = "invalid_dataset"


class InvalidEnvironment(ApplicationError):
    code = "invalid_environment"


class EnvironmentNotReady(ApplicationError):
    status_code = 409
    code = "environment_not_ready"
