"""Schemathesis hooks for Custodian's API document (SCHEMATHESIS_HOOKS)."""

import schemathesis

# The NDJSON imports (`application/x-ndjson`) are documented as a text body:
# send the generated text as it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
