"""Masked reads through asyncpg as an application uses it: a server-side cursor fetched in pages
(row-limited Executes) and a prepared statement executed again and again. Prints one JSON document."""
import asyncio
import json
import sys

import asyncpg


async def main(port: str, database: str, user: str, password: str) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=int(port), database=database, user=user, password=password, ssl=False
    )
    try:
        paged = []
        async with conn.transaction():
            cursor = await conn.cursor("SELECT id, ssn, email, score FROM people ORDER BY id")
            while True:
                page = await cursor.fetch(7)
                if not page:
                    break
                paged.extend(dict(row) for row in page)
        prepared = []
        statement = await conn.prepare("SELECT id, ssn, score FROM people WHERE id = $1")
        for i in range(1, 9):
            prepared.extend(dict(row) for row in await statement.fetch(i))
        print(json.dumps({"paged": paged, "prepared": prepared}))
    finally:
        await conn.close()


asyncio.run(main(*sys.argv[1:5]))
