"""Test certificates: a private CA and certificates it signs, made with the
openssl command line tool in a directory the test owns.

    pki = TestPKI(tmp_path)                     # the CA
    cert, key = pki.issue("mx.example.test", ips=["127.0.0.1"])
    ctx = pki.client_context()                  # trusts only this CA

Keys are EC P-256 (fast to make); certificates are valid for a day.
`issue(..., expired=True)` makes one that expired yesterday and
`self_signed(name)` one no CA vouches for, for the failure cases;
`make_cert(dir, cn)` is the same without a TestPKI (Downstream's tests).
"""
import os
import re
import ssl
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestPKI:
    __test__ = False                # not a pytest test class

    def __init__(self, directory, name="sluice test CA"):
        self.dir = os.path.join(str(directory), "pki")
        os.makedirs(self.dir, exist_ok=True)
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", self.ca_key, "-out", self.ca_cert,
                 "-days", "2", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=self.dir)
        self.serial = 1

    def issue(self, name, dns=(), ips=(), expired=False):
        """A certificate for `name` (plus more DNS names and IPs) signed by
        the CA: returns (cert_path, key_path)."""
        self.serial += 1
        base = os.path.join(self.dir, f"{name}-{self.serial}")
        key, csr, cert = base + ".key", base + ".csr", base + ".pem"
        sans = [f"DNS:{n}" for n in (name, *dns)] + [f"IP:{i}" for i in ips]
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    f"subjectAltName={','.join(sans)}\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", f"/CN={name}", cwd=self.dir)
        sign = ["x509", "-req", "-in", csr, "-CA", self.ca_cert,
                "-CAkey", self.ca_key, "-set_serial", str(self.serial),
                "-extfile", ext, "-out", cert]
        if expired:
            # valid from two days ago until yesterday
            sign += ["-not_before", _utc(-2), "-not_after", _utc(-1)] \
                if _x509_has_dates() else ["-days", "0"]
        else:
            sign += ["-days", "1"]
        _openssl(*sign, cwd=self.dir)
        return cert, key

    def self_signed(self, name):
        """A self-signed certificate for `name`: (cert_path, key_path)."""
        return make_cert(self.dir, name)

    def client_context(self, verify=True):
        """An SSL context for a test client: trusts this CA (and checks
        the host name) when verify, else checks nothing."""
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=self.ca_cert)

    def server_context(self, cert, key):
        """An SSL context for a test server (aiosmtpd) with cert/key."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx


def make_cert(tmpdir, cn="localhost", key="ec", days=2):
    """Self-signed certificate for `cn` (and IP 127.0.0.1) made with the
    openssl CLI into tmpdir: (certfile, keyfile). key: "ec" (P-256, fast)
    or "rsa" (2048 bit)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", cn)
    cert = os.path.join(tmpdir, base + ".crt")
    keyf = os.path.join(tmpdir, base + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
              if key == "ec" else ["-newkey", "rsa:2048"])
    san = f"subjectAltName=DNS:{cn},IP:127.0.0.1"
    subprocess.run(["openssl", "req", "-x509", "-nodes", *newkey,
                    "-keyout", keyf, "-out", cert, "-days", str(days),
                    "-subj", f"/CN={cn}", "-addext", san],
                   check=True, timeout=30, stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return cert, keyf


def _utc(days):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(days=days)
    return t.strftime("%Y%m%d%H%M%SZ")


def _x509_has_dates():
    """openssl x509 -not_before/-not_after came with OpenSSL 3.4."""
    out = subprocess.run(["openssl", "x509", "-help"], capture_output=True,
                         text=True)
    return "-not_after" in (out.stdout + out.stderr)
