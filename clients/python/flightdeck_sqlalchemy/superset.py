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
    @classmethod
    def execute_with_cursor(cls, cursor, sql, query):
        return BaseEngineSpec.execute_with_cursor.__func__(cls, cursor, sql, query)

    @classmethod
    def handle_cursor(cls, cursor, query):
        return BaseEngineSpec.handle_cursor.__func__(cls, cursor, query)

    @classmethod
    def get_cancel_query_id(cls, cursor, query):
        return None

    @classmethod
    def cancel_query(cls, cursor, query, cancel_query_id):
        return False

    @classmethod
    def get_extra_params(cls, database):
        return BaseEngineSpec.get_extra_params.__func__(cls, database)
