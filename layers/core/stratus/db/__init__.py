"""MongoDB through pymongo's native async client: connection, repositories, indexes."""
