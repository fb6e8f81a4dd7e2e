"""Helpers for the Alibaba end-to-end tests: the two official Alibaba Cloud Python SDKs pointed
at a real `ikon serve` (started by tests/e2e/harness.py), error extraction, and a schema check
of raw responses against the Tea SDK's own response models.

Clients (pinned by scripts/install-api-clients.sh):
  tea(...)     alibabacloud-ecs20140526 (Tea/Darabonba): ACS3-HMAC-SHA256 by default,
               RPC V1 (HMAC-SHA1) with v1=True (`signature_algorithm='v2'`)
  legacy(...)  aliyun-python-sdk-ecs + aliyun-python-sdk-core: RPC V1, raw JSON answers
Nothing is skipped: a missing client or server fails the run.
"""

import json
import os
import sys
import typing

# Appended, not prepended: tests/e2e has modules whose names must not shadow ours.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import harness  # noqa: E402  (tests/e2e/harness.py: ikon serve, admin CLI, PostgreSQL)
from alibabacloud_ecs20140526 import models as m  # noqa: E402
from alibabacloud_ecs20140526.client import Client as EcsClient  # noqa: E402
from alibabacloud_tea_openapi.models import Config  # noqa: E402
from aliyunsdkcore.acs_exception.exceptions import ServerException  # noqa: E402
from aliyunsdkcore.client import AcsClient  # noqa: E402
from Tea.model import TeaModel  # noqa: E402

REGION = "cn-hangzhou"


def tea(server, acc, v1=False, secret=None, region=REGION):
    """The Tea client as a user configures it for a plain-HTTP endpoint."""
    cfg = Config(access_key_id=acc["SecretId"], access_key_secret=secret or acc["SecretKey"],
                 endpoint=server.addr, protocol="http", region_id=region)
    if v1:
        cfg.signature_algorithm = "v2"
    return EcsClient(cfg)


def legacy(server, acc, secret=None, region=REGION):
    """The legacy AcsClient with the ECS endpoint of `region` pointed at the server."""
    c = AcsClient(acc["SecretId"], secret or acc["SecretKey"], region)
    c.add_endpoint(region, "Ecs", server.addr)
    return c


def lcall(client, request):
    """A legacy call's raw JSON answer."""
    return json.loads(client.do_action_with_exception(request))


def legacy_req(cls, **setters):
    """A legacy request with setters applied, e.g. legacy_req(DeleteImageRequest, ImageId=x)."""
    r = cls()
    for k, v in setters.items():
        getattr(r, "set_" + k)(v)
    return r


def code_of(fn):
    """(HTTP status, error code) of a failing call through either SDK; None on success."""
    try:
        fn()
    except ServerException as e:
        assert e.get_request_id(), "legacy errors carry a RequestId"
        return e.get_http_status(), e.get_error_code()
    except Exception as e:  # Tea: ClientException (4xx) / ServerException (5xx) with .code
        code = getattr(e, "code", None)
        if code is None:
            raise
        data = getattr(e, "data", None) or {}
        assert data.get("RequestId"), "Tea errors carry a RequestId: %r" % (data,)
        return getattr(e, "status_code", None), code
    return None


def ali(image_id):
    """The Alibaba id (`m-…`) of an image published as `img-…`."""
    assert image_id.startswith("img-"), image_id
    return "m-" + image_id[len("img-"):]


def _check_value(tc, v, typ, where):
    origin = typing.get_origin(typ)
    if origin in (list, typing.List):
        tc.assertIsInstance(v, list, "%s must be a JSON array" % where)
        (item,) = typing.get_args(typ) or (typing.Any,)
        for i, x in enumerate(v):
            _check_value(tc, x, item, "%s[%d]" % (where, i))
    elif origin in (dict, typing.Dict):
        tc.assertIsInstance(v, dict, "%s must be a JSON object" % where)
    elif typ is str:
        tc.assertIsInstance(v, str, "%s must be a string, got %r" % (where, v))
    elif typ is int:
        tc.assertTrue(isinstance(v, int) and not isinstance(v, bool), "%s must be an integer, got %r" % (where, v))
    elif typ is bool:
        tc.assertIsInstance(v, bool, "%s must be a boolean, got %r" % (where, v))
    elif typ is float:
        tc.assertTrue(isinstance(v, (int, float)) and not isinstance(v, bool), "%s must be a number" % where)
    elif isinstance(typ, type) and issubclass(typ, TeaModel):
        tc.assertIsInstance(v, typ, where)
        _check_model(tc, v, where)
    elif typ is typing.Any:
        pass
    else:
        raise AssertionError("unknown Tea type %r for %s" % (typ, where))


def _check_model(tc, obj, where):
    for name, typ in typing.get_type_hints(type(obj).__init__).items():
        v = getattr(obj, name, None)
        if name != "return" and v is not None:
            _check_value(tc, v, typ, "%s.%s" % (where, name))


def _extra_keys(raw, known, where):
    """Keys of `raw` (JSON) the model's round trip `known` does not have."""
    out = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            if not isinstance(known, dict) or k not in known:
                out.append("%s.%s" % (where, k))
            else:
                out += _extra_keys(v, known[k], "%s.%s" % (where, k))
    elif isinstance(raw, list) and isinstance(known, list):
        for i, (a, b) in enumerate(zip(raw, known)):
            out += _extra_keys(a, b, "%s[%d]" % (where, i))
    return out


def schema(tc, raw, action, exact=True):
    """Checks a raw JSON answer of `action` against the Tea SDK's <Action>ResponseBody model:
    every field of the declared JSON type (strict, as the Go SDK decodes), and with `exact`,
    no field the model does not declare. Returns the parsed model."""
    body = getattr(m, action + "ResponseBody")().from_map(raw)
    _check_model(tc, body, action)
    if exact:
        extra = _extra_keys(raw, body.to_map(), action)
        tc.assertEqual(extra, [], "fields the SDK model of %s does not declare" % action)
    tc.assertRegex(raw.get("RequestId", ""), r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")
    return body
