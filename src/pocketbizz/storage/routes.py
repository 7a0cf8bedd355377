"""Routes of the data API. (Filled in by the data-API work.)"""

from typing import Any

routes: list[Any] = []
