"""Validates every line of JSONL files against a JSON schema, as a fine-tuning pipeline's
loader would. Prints the number of lines checked; exit 1 with file, line and reason otherwise.

usage: python check_jsonl.py <schema.json> <file.jsonl>...
"""
import json
import sys

import jsonschema


def main(schema_path: str, files: list[str]) -> int:
    with open(schema_path) as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    n = 0
    for path in files:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{path}:{i}: not JSON: {e}", file=sys.stderr)
                    return 1
                errors = list(validator.iter_errors(value))
                if errors:
                    print(f"{path}:{i}: {errors[0].json_path}: {errors[0].message}", file=sys.stderr)
                    return 1
                n += 1
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
