"""Requests and answers checked against a service's OpenAPI document.

- :mod:`.document`: reading a document, naming its invalid schemas by JSON
  pointer, turning OpenAPI 3.0 schemas into the JSON Schema they mean.
- :mod:`.operations`: the document compiled once into its operations, each
  with its parameters' and bodies' validators (jsonschema-rs).
- :mod:`.checks`: one request (or answer) checked: a list of problems.
- :mod:`.services`: each service's document found, checked and compiled, for
  ``gateway check`` and for the app.

The chain step that uses them is gateway/policies/validate.py.
"""

from __future__ import annotations

from .checks import Problem, Request, UnsupportedMediaType, body_problems, check_request, media_type
from .document import DocumentError
from .operations import Operation, Operations, compile_document
from .services import compiled_operations, document_checks, service_operations

__all__ = ["DocumentError", "Operation", "Operations", "Problem", "Request",
           "UnsupportedMediaType", "body_problems", "check_request", "compile_document",
           "compiled_operations",
           "document_checks", "media_type", "service_operations"]
