"""Every module that declares Dramatiq actors; the worker imports this one module."""

from app.callbacks import tasks as callbacks_tasks  # noqa: F401
from app.lookup import tasks as lookup_tasks  # noqa: F401
from app.messages import tasks as messages_tasks  # noqa: F401
from app.notices import tasks as notices_tasks  # noqa: F401
from app.system import tasks as system_tasks  # noqa: F401
