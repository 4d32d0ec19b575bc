"""Superset engine spec: Trino's SQL dialect and time grains, over Flight SQL."""

from superset.db_engine_specs.base import BaseEngineSpec
from superset.db_engine_specs.trino import TrinoEngineSpec


class FlightdeckEngineSpec(TrinoEngineSpec):
    engine = "flightdeck"
    engine_name = "Flightdeck"
    default_driver = "adbc"
    sqlalchemy_uri_placeholder = "flightdeck://user:password@host:50051/catalog/schema"

    # The Trino spec's cursor hooks need the trino client's cursor (query id,
    # stats, cancel); over Flight SQL the generic behaviour applies.
    # Signatures vary across Superset versions: pass arguments through.
    @classmethod
    def execute_with_cursor(cls, *args, **kwargs):
        return BaseEngineSpec.execute_with_cursor(*args, **kwargs)

    @classmethod
    def handle_cursor(cls, *args, **kwargs):
        return BaseEngineSpec.handle_cursor(*args, **kwargs)

    @classmethod
    def get_cancel_query_id(cls, *args, **kwargs):
        return None

    @classmethod
    def cancel_query(cls, *args, **kwargs):
        return False

    @classmethod
    def get_extra_params(cls, *args, **kwargs):
        # The Trino spec adds trino-client connect arguments ADBC would refuse.
        return BaseEngineSpec.get_extra_params(*args, **kwargs)
