"""Pure mappers: a plain dict describing a domain object -> a FHIR R4B resource dict.

One module per resource type. No Django, no database, no clock: what a mapper returns depends
only on its input, which makes them testable with golden files.
"""
