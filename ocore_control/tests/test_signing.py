import time

from odoo.tests import BaseCase

from ..agent import signing


class TestAgentSigning(BaseCase):
    SECRET = "s" * 64

    def headers(self, **kw):
        return signing.sign(self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 1}', **kw)

    def test_valid_then_replayed(self):
        nonces = signing.NonceCache()
        headers = self.headers()
        signing.verify(self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 1}', headers, nonces)
        with self.assertRaisesRegex(signing.SignatureError, "replayed"):
            signing.verify(self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 1}', headers, nonces)

    def test_refusals(self):
        cases = [
            ("other secret", lambda h: h, "t" * 64, "POST", "/v1/instances/a/stop", b'{"x": 1}', "bad signature"),
            ("other path", lambda h: h, self.SECRET, "POST", "/v1/instances/b/stop", b'{"x": 1}', "bad signature"),
            ("other method", lambda h: h, self.SECRET, "GET", "/v1/instances/a/stop", b'{"x": 1}', "bad signature"),
            ("other body", lambda h: h, self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 2}', "bad signature"),
            ("unsigned", lambda h: {}, self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 1}', "unsigned"),
        ]
        for label, change, secret, method, path, body, expected in cases:
            with self.subTest(label):
                with self.assertRaisesRegex(signing.SignatureError, expected):
                    signing.verify(secret, method, path, body, change(self.headers()), signing.NonceCache())

    def test_stale(self):
        old = self.headers(timestamp=int(time.time()) - 120)
        with self.assertRaisesRegex(signing.SignatureError, "stale"):
            signing.verify(self.SECRET, "POST", "/v1/instances/a/stop", b'{"x": 1}', old, signing.NonceCache())
