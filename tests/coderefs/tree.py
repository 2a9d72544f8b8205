"""A small source tree with true and false positives, written into a directory."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "app/checkout.py": (
        "from lockgate.sdk import Client\n"
        "\n"
        "def serve(client, ctx):\n"
        '    mode = client.mode("checkout", ctx)  # the real use\n'
        '    # client.mode("checkout", ctx) was here before\n'
        '    label = "checkout page"\n'
        '    other = client.variation("checkout-v2", ctx, False)\n'
        "    return mode\n"
    ),
    "web/src/banner.ts": (
        "// shows the 'renewal-banner' behavior\n"
        "const on = client.getBooleanValue('renewal-banner', false);\n"
        "/* 'checkout' in a block comment */\n"
        " * `checkout` in a doc comment line\n"
        "const url = 'https://x.test/?q=checkout';\n"
        'const ghost = client.getStringValue("ghost-flag", "off");\n'
    ),
    "svc/main.go": (
        "package main\n"
        "\n"
        "func run() {\n"
        '\tv := client.BoolVariation("checkout", ctx, false) // checkout\n'
        "\t_ = v\n"
        "}\n"
    ),
    "svc/Flags.java": (
        "class Flags {\n"
        '  static final String KEY = "renewal-banner";\n'
        "  boolean RENEWAL_BANNER = true;\n"
        "}\n"
    ),
    "deploy/values.yaml": (
        "behaviors:\n"
        "  - checkout\n"
        "  - checkout-v2\n"
        "flag: renewal-banner  # comment\n"
        "# flag: checkout\n"
    ),
    "deploy/flags.json": '{"flags": ["checkout", "not-a-flag"]}\n',
    "README.md": 'The "checkout" behavior is documented here (not a source file).\n',
    "build/generated.py": 'KEY = "checkout"\n',
    "logs/debug.py": 'KEY = "checkout"\n',
    "logs/keep.py": 'KEY = "renewal-banner"\n',
    ".gitignore": "build/\nlogs/*\n!logs/keep.py\n",
    "vendor/.gitignore": "*.js\n",
    "vendor/lib.js": 'use("checkout")\n',
    "vendor/lib.ts": 'use("checkout")\n',
    "bin/blob.json": '"checkout"\x00\x01',
}

EXPECTED = [
    ("app/checkout.py", 4, "checkout"),
    ("app/checkout.py", 7, "checkout-v2"),
    ("deploy/flags.json", 1, "checkout"),
    ("deploy/values.yaml", 2, "checkout"),
    ("deploy/values.yaml", 3, "checkout-v2"),
    ("deploy/values.yaml", 4, "renewal-banner"),
    ("logs/keep.py", 1, "renewal-banner"),
    ("svc/Flags.java", 2, "renewal-banner"),
    ("svc/main.go", 4, "checkout"),
    ("vendor/lib.ts", 1, "checkout"),
    ("web/src/banner.ts", 2, "renewal-banner"),
    ("web/src/banner.ts", 6, "ghost-flag"),
]
"""(path, line, key) found with the keys checkout, renewal-banner and checkout-v2 known."""


def write_tree(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return root
