"""testssl.sh (Debian's testssl.sh) against the demo over TLS: no finding rated HIGH or
CRITICAL, apart from what a self-signed test certificate necessarily draws (no chain of
trust, no CRL/OCSP URI). Protocols, ciphers, renegotiation, compression and the known
attacks (Heartbleed, ROBOT, BEAST, POODLE, SWEET32...) are all in the scan.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check  # noqa: E402

# what a self-signed certificate made for a test cannot avoid
EXPECTED_FOR_TEST_CERT = {"cert_chain_of_trust", "cert_revocation"}


def test_testssl_no_high_findings(binary):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    check(testssl, "testssl.sh missing (scripts/deps.sh test installs it)")
    tmp = tempfile.mkdtemp(prefix="tern-testssl-")
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "365", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl req: %r" % r.stderr[-300:])
    out = os.path.join(tmp, "scan.json")
    with harness.serving(binary, ["--tls-cert", cert, "--tls-key", key], workers=1) as srv:
        r = subprocess.run([testssl, "--quiet", "--color", "0", "--fast", "--severity", "HIGH",
                            "--jsonfile", out, "127.0.0.1:%d" % srv.port],
                           capture_output=True, timeout=900)
        check(os.path.exists(out), "testssl wrote no report (rc %d): %s" % (
            r.returncode, r.stdout[-1000:].decode(errors="replace")))
        findings = json.load(open(out))
    bad = [(f["id"], f["severity"], f["finding"]) for f in findings
           if f.get("severity") in ("HIGH", "CRITICAL") and f["id"] not in EXPECTED_FOR_TEST_CERT]
    print("    testssl: %d findings rated HIGH or above, %d of them beyond the test "
          "certificate's own" % (sum(f.get("severity") in ("HIGH", "CRITICAL") for f in findings),
                                 len(bad)))
    check(not bad, "testssl findings: %r" % bad)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
