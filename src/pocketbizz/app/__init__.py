"""The PocketBizz app: a Flet (Flutter) client of the PocketBizz API.

A client only: it imports nothing from the server packages and reaches the server through the
official `supabase` client, like any device would. `create_web_app` gives the web build that
`pocketbizz serve` mounts at `/app/`; `pocketbizz app --backend URL` runs it alone.
"""

from pocketbizz.app.config import AppConfig, fetch_config
from pocketbizz.app.web import create_web_app

__all__ = ["AppConfig", "create_web_app", "fetch_config"]
