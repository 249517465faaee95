#!/usr/bin/env python3
"""Writes the seed corpora in corpus/<target>/ from the project's test fixtures.

Run from fuzz/: python3 seeds.py. Overwrites the seeds it writes, deletes nothing.
Seeds for `signature` use the input layout described in fuzz_targets/signature.rs.
"""
import base64
import hashlib
import hmac
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"
SEP = b"\xff"


def sign(secret: str, body: bytes, nonce: str, ts: str) -> str:
    mac = hmac.new(secret.encode(), body + b"." + nonce.encode() + b"." + ts.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def signature_input(present, invalid, now, tolerance, sig, nonce, ts, alg, current, previous, body):
    head = bytes([present, invalid]) + struct.pack("<qH", now, tolerance)
    fields = [f.encode() for f in (sig, nonce, ts, alg, current, previous)]
    return head + SEP.join(fields) + SEP + body


def main():
    bodies = {}
    for path in sorted((FIXTURES / "callbacks").glob("*.json")):
        bodies[path.stem] = path.read_bytes()
    vectors = json.loads((FIXTURES / "signature-vectors.json").read_text())["vectors"]
    for i, v in enumerate(vectors):
        bodies[f"vector-{i}"] = v["body"].encode()

    # Triggers without a fixture, so that each payload parser and natural key has a seed.
    env = '"app_id":"01HAPP","accepted_time":"2025-03-04T12:10:00.000Z","project_id":"p1",'
    contact = '{"id":"01HCONT1","channel_identities":[{"channel":"SMS","identity":"4670"}],"display_name":"A"}'
    conv = '{"id":"01HCONV1","app_id":"01HAPP","contact_id":"01HCONT1","active":false,"active_channel":"SMS"}'
    synthetic = {
        "contact_update": '{%s"contact_update_notification":{"contact":%s}}' % (env, contact),
        "contact_delete": '{%s"contact_delete_notification":{"contact":%s}}' % (env, contact),
        "contact_merge": '{%s"contact_merge_notification":{"preserved_contact":%s,"deleted_contact":%s}}'
        % (env, contact, contact.replace("01HCONT1", "01HCONT2")),
        "conversation_stop": '{%s"conversation_stop_notification":{"conversation":%s}}' % (env, conv),
        "conversation_delete": '{%s"conversation_delete_notification":{"conversation":%s}}' % (env, conv),
        "opt_out": '{%s"opt_out_notification":{"request_id":"01HREQ2","contact_id":"c","channel":"SMS",'
        '"identity":"4670","status":"OPT_OUT_SUCCEEDED"}}' % env,
        "message_redaction": '{%s"message_redaction":{"id":"01HMSG1"}}' % env,
        "mo_text": '{"id":"01JMO1","type":"mo_text","from":"4670","to":"4671","body":"hi",'
        '"received_at":"2025-01-13T09:22:40.914Z","operator_id":"24001"}',
        "mo_binary": '{"id":"01JMO2","type":"mo_binary","from":"4670","to":"4671","body":"AAE=","udh":"0500"}',
        "mo_media": '{"id":"01JMO3","type":"mo_media","from":"4670","to":"4671","body":{"subject":"s","media":[]}}',
        "delivery_report_sms": '{"batch_id":"01JB1","type":"delivery_report_sms","total_message_count":2,'
        '"statuses":[{"code":0,"count":2,"recipients":["4670"],"status":"Delivered"}]}',
        "recipient_delivery_report_mms": '{"batch_id":"01JB2","recipient":"4670","status":"Failed","code":402,'
        '"type":"recipient_delivery_report_mms","at":"2025-01-13T09:22:40Z"}',
    }
    for name, text in synthetic.items():
        json.loads(text)
        bodies[f"synthetic-{name}"] = text.encode()

    for target in ("classify", "dedupe"):
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, body in bodies.items():
            (out / f"{name}.json").write_bytes(body)

    out = HERE / "corpus" / "signature"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {}
    # Every vector as sent, verified at its own timestamp (valid and invalid ones alike).
    for i, v in enumerate(vectors):
        ts = v["timestamp"]
        seeds[f"vector-{i}"] = signature_input(
            0x0F, 0, int(ts), 300, v["expected"], v["nonce"], ts, "HmacSHA256",
            "foo_secret1234" if v["secret"] == "wrong_secret" else v["secret"], "", v["body"].encode())
    # Fixtures signed with the previous secret during a rotation, checking tolerance edges.
    for name in ("message_delivery", "sms_recipient_delivery_report"):
        body = bodies[name]
        ts, nonce = "1700000000", "01HWXYZNONCE0000000000000B"
        seeds[f"{name}-previous"] = signature_input(
            0x7F, 0, 1700000120, 300, sign("old-secret", body, nonce, ts), nonce, ts, "HmacSHA256",
            "new-secret", "old-secret", body)
    body, ts, nonce = bodies["opt_in"], "1700000000", "n1"
    sig = sign("k", body, nonce, ts)
    # Stale, no algorithm header, an invalid header, a bad timestamp, a malformed signature.
    seeds["stale"] = signature_input(0x07, 0, 1700000301, 300, sig, nonce, ts, "", "k", "", body)
    seeds["no-algorithm"] = signature_input(0x87, 0, 1700000000, 0, sig, nonce, ts, "", "k", "", body)
    seeds["invalid-nonce"] = signature_input(0x0F, 0x02, 1700000000, 300, sig, nonce, ts, "HmacSHA256", "k", "", body)
    seeds["bad-timestamp"] = signature_input(0x0F, 0, 1700000000, 300, sig, nonce, "+1700000000", "HmacSHA256", "k", "", body)
    seeds["unpadded"] = signature_input(0x0F, 0, 1700000000, 300, sig.rstrip("="), nonce, ts, "HmacSHA256", "k", "", body)
    seeds["other-algorithm"] = signature_input(0x0F, 0, 1700000000, 300, sig, nonce, ts, "HmacSHA1", "k", "", body)
    # Secrets that differ only by trailing NULs are the same HMAC key (zero padding): the
    # current one matches first even when re-signing with the previous one.
    seeds["nul-padded-previous"] = signature_input(
        0x3F, 0, 1700000000, 300, sig, nonce, ts, "HmacSHA256", "k", "k\0", body)
    for name, data in seeds.items():
        (out / f"{name}.bin").write_bytes(data)


if __name__ == "__main__":
    main()
