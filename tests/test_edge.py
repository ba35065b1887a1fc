"""The CDN edge: template.yaml's CloudFront resources and the viewer-request function.

The function's source is edge/viewer-request.js; template.yaml carries a verbatim copy in
FunctionCode (CloudFormation takes inline code only), and the first test fails when they differ.
The function's behaviour is tested under node (edge/viewer-request.test.js, node's own test
runner); the node tests are skipped, with the reason, when node is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from browser_accept import BROWSERS

from imageserving.negotiate import accept_class

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: the edge function's JS tests need it")


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !If ...) as {"Fn": value}."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def _cdn(template: dict) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"].startswith("AWS::CloudFront::")}


def test_template_function_code_is_edge_viewer_request_js(template):
    code = template["Resources"]["ViewerRequestFunction"]["Properties"]["FunctionCode"]
    assert code == (EDGE / "viewer-request.js").read_text(), (
        "template.yaml's FunctionCode differs from edge/viewer-request.js: copy the file into the template"
    )


def test_function_runtime_and_event(template):
    fn = template["Resources"]["ViewerRequestFunction"]["Properties"]
    assert fn["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0" and fn["AutoPublish"] is True
    behavior = template["Resources"]["ImageDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["FunctionAssociations"] == [
        {
            "EventType": "viewer-request",
            "FunctionARN": {"GetAtt": "ViewerRequestFunction.FunctionMetadata.FunctionARN"},
        }
    ]


def test_cache_key_keeps_every_query_string_and_only_normalised_headers(template):
    config = template["Resources"]["ImageCachePolicy"]["Properties"]["CachePolicyConfig"]
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["x-is-accept", "x-is-dpr", "x-is-net"]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    # TTLs come from the origin's Cache-Control: no floor, a year's ceiling, nothing without headers.
    assert (config["MinTTL"], config["DefaultTTL"], config["MaxTTL"]) == (0, 0, 31536000)


def test_function_sets_exactly_the_cache_key_headers(template):
    source = (EDGE / "viewer-request.js").read_text()
    key = template["Resources"]["ImageCachePolicy"]["Properties"]["CachePolicyConfig"]
    for name in key["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"]:
        assert f"headers['{name}'] = " in source


def test_origin_request_policy_forwards_hints_but_not_host(template):
    config = template["Resources"]["ImageOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
    headers = {h.lower() for h in config["HeadersConfig"]["Headers"]}
    assert {"sec-ch-dpr", "dpr", "ect", "downlink", "save-data", "cloudfront-is-mobile-viewer"} <= headers
    assert "host" not in headers and config["HeadersConfig"]["HeaderBehavior"] == "whitelist"


def test_distribution_settings(template):
    dist = template["Resources"]["ImageDistribution"]["Properties"]["DistributionConfig"]
    behavior = dist["DefaultCacheBehavior"]
    assert behavior["Compress"] is False
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    errors = dist["CustomErrorResponses"]
    assert {e["ErrorCode"] for e in errors} >= {400, 403, 404, 500, 502, 503, 504}
    assert all(0 < e["ErrorCachingMinTTL"] <= 10 for e in errors)
    origin = dist["Origins"][0]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["OriginShield"]["If"][0] == "UseOriginShield"


def test_cdn_is_optional(template):
    assert template["Parameters"]["EnableCdn"]["Default"] == "true"
    assert template["Parameters"]["OriginShieldRegion"]["Default"] == ""
    for name, resource in _cdn(template).items():
        assert resource.get("Condition") == "CreateCdn", name
    outputs = template["Outputs"]
    assert outputs["CdnDomainName"]["Condition"] == "CreateCdn"
    assert outputs["CdnDomainName"]["Value"] == {"GetAtt": "ImageDistribution.DomainName"}


@needs_node
def test_node_tests_of_the_function():
    done = subprocess.run(
        [NODE, "--test", str(EDGE / "viewer-request.test.js")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout


@needs_node
def test_python_and_edge_classify_accept_alike():
    # negotiate.accept_class reads raw Accept when there is no CDN: it must agree with the edge.
    headers = [h for _, h, _ in BROWSERS] + ["image/webp;q=0.5", "image/avif;q=1.0", "IMAGE/WEBP", ";;,,", "q=1"]
    script = (
        "const fs=require('fs'),vm=require('vm');const c={};"
        "vm.runInNewContext(fs.readFileSync(process.argv[1],'utf8')+';this.f=acceptClass;',c);"
        "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(c.f)))"
    )
    done = subprocess.run(
        [NODE, "-e", script, str(EDGE / "viewer-request.js"), json.dumps(headers)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == [accept_class(h) for h in headers]


HINT_CASES = [
    {},
    {"Accept": "image/webp,*/*", "Sec-CH-DPR": "2.625"},
    {"Accept": "image/avif", "DPR": "1.5", "Save-Data": "on"},
    {"Sec-CH-DPR": "x", "DPR": "2", "ECT": "3g"},
    {"Sec-CH-DPR": "0", "Downlink": "0.45"},
    {"DPR": "inf", "Downlink": "10", "ECT": "4g"},
    {"Sec-CH-DPR": "1.2", "Downlink": "abc", "Save-Data": "off"},
    {"Sec-CH-DPR": "3.5", "ECT": "slow-2g"},
]


@needs_node
def test_python_client_hints_match_the_edge_function():
    from imageserving.negotiate import client_hints

    script = (
        "const fs=require('fs'),vm=require('vm');const c={};"
        "vm.runInNewContext(fs.readFileSync(process.argv[1],'utf8')+';this.h=handler;',c);"
        "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(function (hs) {"
        "  var headers={}; for (var k in hs) headers[k.toLowerCase()]={value: hs[k]};"
        "  var r=c.h({request:{headers:headers, querystring:{}}}).headers;"
        "  return [r['x-is-accept'].value, r['x-is-dpr'].value, r['x-is-net'].value]; })))"
    )
    done = subprocess.run(
        [NODE, "-e", script, str(EDGE / "viewer-request.js"), json.dumps(HINT_CASES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for headers, (accept, dpr, net) in zip(HINT_CASES, json.loads(done.stdout)):
        direct = client_hints(headers)
        assert (direct.accept, direct.dpr, direct.slow, direct.from_cdn) == (accept, float(dpr), net == "slow", False)
        # What the origin sees behind the CDN: the edge's headers win over the raw ones.
        behind = client_hints(headers | {"x-is-accept": accept, "x-is-dpr": dpr, "x-is-net": net})
        assert (behind.accept, behind.dpr, behind.slow, behind.from_cdn) == (accept, float(dpr), net == "slow", True)
