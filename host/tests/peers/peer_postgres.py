"""Reads back what the postgres destination inserted, with psycopg 3 (PyPI), not with our code.

    peer_postgres.py CONNINFO read TABLE   prints [{"id", "type", "occurred_at", "payload"}] in
                                           occurred_at order, then drops TABLE
    peer_postgres.py CONNINFO count TABLE  prints {"count": n}
"""
import json
import sys

import psycopg
from psycopg import sql

conninfo, command, table = sys.argv[1], sys.argv[2], sys.argv[3]
with psycopg.connect(conninfo, autocommit=True) as conn:
    name = sql.Identifier(table)
    if command == "read":
        rows = conn.execute(
            sql.SQL("SELECT id, type, occurred_at, payload FROM {} ORDER BY occurred_at, id").format(name)
        ).fetchall()
        conn.execute(sql.SQL("DROP TABLE {}").format(name))
        print(json.dumps([
            {"id": r[0], "type": r[1], "occurred_at": r[2].isoformat(), "payload": r[3]} for r in rows
        ]))
    elif command == "count":
        (n,) = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
        print(json.dumps({"count": n}))
