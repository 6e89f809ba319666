"""Git push webhooks, as pure logic: which provider sent a request, whether it is genuine, what
was pushed, and which Applications that touches. The HTTP receiver (`scheduler/webhook.py`)
does the I/O around it."""

from .events import Event, Ignored, Ping, Push, WebhookError
from .matching import Target, affected, ref_matches, target_of, touches
from .providers import PROVIDERS, authenticate, delivery_id, detect, parse

__all__ = [
    "PROVIDERS",
    "Event",
    "Ignored",
    "Ping",
    "Push",
    "Target",
    "WebhookError",
    "affected",
    "authenticate",
    "delivery_id",
    "detect",
    "parse",
    "ref_matches",
    "target_of",
    "touches",
]
