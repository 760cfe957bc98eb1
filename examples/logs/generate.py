#!/usr/bin/env python3
"""Writes sample.ndjson: realistic structured logs from Python services in the seed schema.

Deterministic (fixed seed), so the committed file can be regenerated identically:
    python3 examples/logs/generate.py > examples/logs/sample.ndjson
"""
import json
import random
import uuid

rng = random.Random(20261121)
SERVICES = ["payment-gateway", "user-profile", "order-api", "critical-service", "search-api"]
LEVELS = ["INFO"] * 10 + ["info", "warn", "WARNING", "DEBUG", "debug", "ERROR", "err", "CRITICAL", "fatal", "trace"]
PATHS = ["/users/{n}/orders", "/orders/{n}", "/payments/{u}/refund", "/api/v2/items/{n}", "/search", "/healthz", "/readyz"]
IPS = ["8.8.8.8", "81.2.69.160", "2.125.160.216", "89.160.20.128", "175.16.199.10", "10.0.3.7", "127.0.0.1", "192.168.1.20"]
NAMES = ["mario.rossi", "giulia.bianchi", "luca.verdi", "anna", "j.smith"]


def uid():
    return str(uuid.UUID(int=rng.getrandbits(128)))


def event(i):
    service = rng.choice(SERVICES)
    level = rng.choice(LEVELS)
    path = rng.choice(PATHS).format(n=rng.randint(1, 99999), u=uid())
    method = rng.choice(["GET", "GET", "POST", "PUT", "DELETE"])
    status = 200 if path in ("/healthz", "/readyz") else rng.choice([200, 200, 201, 204, 400, 404, 500, 503])
    duration = round(rng.uniform(0.4, 2400.0), 1)
    ts = f"2025-01-15T10:{30 + i // 60:02d}:{i % 60:02d}.{rng.randint(0, 999):03d}Z"
    if i % 17 == 0:
        ts = 1736937045 + i  # epoch seconds from an older logger
    e = {
        "timestamp": ts,
        "level": level,
        "service": service,
        "version": f"2.{rng.randint(0, 4)}.{rng.randint(0, 9)}",
        "trace_id": uid(),
        "span_id": uid(),
        "user_id": f"usr_{rng.getrandbits(64):016x}",
        "request_id": f"req_{rng.getrandbits(64):016x}",
        "message": f"{method} {path} -> {status}",
        "method": method,
        "path": path,
        "status_code": status if i % 23 else str(status),  # some services log it as a string
        "duration_ms": duration if i % 19 else f"{duration}",
        "client_ip": rng.choice(IPS),
        "context": {"client_ip": rng.choice(IPS), "user_agent": "python-requests/2.31"},
        "performance": {"duration_ms": duration, "memory_mb": rng.randint(40, 400)},
    }
    if service == "payment-gateway":
        e["context"].update(payment_amount=round(rng.uniform(1, 500), 2), currency="EUR", payment_method="stripe")
    if service == "user-profile":
        e["context"]["user_action"] = rng.choice(["login", "update_email", "logout"])
        e["email"] = f"{rng.choice(NAMES)}@example.com"
    if i % 7 == 0:
        e["context"]["password"] = "hunter2"
        e["token"] = f"tok_{rng.getrandbits(64):x}"
    if i % 11 == 0:
        e["message"] += f" (contact {rng.choice(NAMES)}@example.org)"
    if level.upper() in ("ERROR", "ERR", "CRITICAL", "FATAL") and rng.random() < 0.7:
        e["exception"] = {
            "type": "ValueError",
            "message": "invalid literal for int() with base 10: 'abc'",
            "traceback": 'Traceback (most recent call last):\n  File "/app/handlers.py", line 42, in handle\n'
            "    amount = int(raw)\nValueError: invalid literal for int() with base 10: 'abc'",
        }
    return e


lines = []
for i in range(300):
    lines.append(json.dumps(event(i), ensure_ascii=False))
    if i in (40, 150, 260):
        lines.append('{"timestamp": "2025-01-15T10:31:00Z", "level": "INFO", "message": "truncated')
    if i == 90:
        lines.append('["not", "an", "object"]')
print("\n".join(lines))
