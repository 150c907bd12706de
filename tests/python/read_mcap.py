"""Reads an arbor recording with Foxglove's own `mcap` package, as a user's tooling would.

Checks every message of every channel: JSON encoding, a JSON schema per channel, and each
message valid against its channel's schema. Prints the message count per topic as JSON.
Exit status 1 (with the reason on stderr) when anything does not hold.

usage: python read_mcap.py <run.mcap>
"""
import json
import sys

import jsonschema
from mcap.reader import make_reader


def main(path: str) -> int:
    counts: dict[str, int] = {}
    validators: dict[int, jsonschema.protocols.Validator] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        if summary is None:
            print(f"{path}: no summary section", file=sys.stderr)
            return 1
        for schema, channel, message in reader.iter_messages():
            if channel.message_encoding != "json":
                print(f"{path}: {channel.topic}: encoding {channel.message_encoding}", file=sys.stderr)
                return 1
            if schema is None or schema.encoding != "jsonschema":
                print(f"{path}: {channel.topic}: no JSON schema", file=sys.stderr)
                return 1
            if channel.id not in validators:
                validators[channel.id] = jsonschema.Draft202012Validator(json.loads(schema.data))
            body = json.loads(message.data)
            errors = list(validators[channel.id].iter_errors(body))
            if errors:
                print(f"{path}: {channel.topic} message {message.sequence}: {errors[0].message}", file=sys.stderr)
                return 1
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
        stats = summary.statistics
        if stats is not None and stats.message_count != sum(counts.values()):
            print(f"{path}: statistics say {stats.message_count} messages, read {sum(counts.values())}", file=sys.stderr)
            return 1
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
