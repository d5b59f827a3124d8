"""schemathesis hooks for scripts/check-api: sign the webhooks it generates.

A Sidobe webhook is signed with hex(sha256(SIDOBE_SECRET_KEY + "|" + the body's id)); without
this every generated webhook would stop at the 401 and the rest of the webhook path would go
untested. Only a case that carries the header gets a valid value in it (schemathesis leaves it
out on purpose to check that a missing signature is refused); a body without a string id keeps
the generated value (and gets the 400 or 401 it deserves).
"""
import hashlib
import os

import schemathesis

KEY = os.environ["SIDOBE_SECRET_KEY"]
HEADER = "X-Webhook-Signature"


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.path != "/webhooks/sidobe" or not isinstance(case.body, dict):
        return
    headers = dict(case.headers or {})
    present = [name for name in headers if name.lower() == HEADER.lower()]
    webhook_id = case.body.get("id")
    if not present or not isinstance(webhook_id, str):
        return
    for name in present:
        del headers[name]
    headers[HEADER] = hashlib.sha256((KEY + "|" + webhook_id).encode()).hexdigest()
    case.headers = headers
