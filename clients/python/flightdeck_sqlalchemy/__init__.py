"""SQLAlchemy dialect (and Superset engine spec) for Flightdeck.

Queries are Trino SQL, compiled by the Trino dialect; they travel over
Arrow Flight SQL through ADBC, and reflection uses Flight SQL metadata
calls, which Flightdeck answers from Trino as the connected user.

    flightdeck://user:password@host:50051/catalog/schema[?tls=true]
"""
