"""The /is/try page (issue 13.5): served only when IS_TRY_PAGE is on, packaged with the function,
examples that answer as labelled, and - in a real headless Chromium against the real local server -
an example's image, headers, properties and error answers, with nothing from a URL run as markup.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(dev extra); ``.ci/run`` installs them and sets IS_BROWSER_TEST=required, which turns a missing
browser into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import local_client
from serving import running_server

from imageserving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "functions" / "imageserving" / "imageserving" / "try"
EXAMPLES = json.loads((PAGE / "examples.json").read_text())


def _examples(group: str | None = None) -> list[tuple[str, str]]:
    return [(label, path) for g in EXAMPLES["groups"] if group in (None, g["name"]) for label, path in g["examples"]]


# ---------------------------------------------------------------------------------------- served, or not


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/is/try")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, media in (("try.js", "text/javascript"), ("try.css", "text/css"), ("examples.json", "application/json")):
        reply = client.get(f"/is/try/{name}")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith(media), name
    # Only the page's own files: nothing else of the package, however the name is spelled.
    for other in ("app.py", "..%2Fapp.py", "%2e%2e%2fsettings.py", "index.html", "try"):
        assert client.get(f"/is/try/{other}").status_code == 404, other
    slash = client.get("/is/try/", follow_redirects=False)
    assert slash.status_code == 308 and slash.headers["location"] == "../try"


def test_off_by_the_setting_and_by_default_on_lambda():
    assert Settings.from_env({}).try_page is True
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}).try_page is False
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "IS_TRY_PAGE": "true"}).try_page is True
    assert Settings.from_env({"IS_TRY_PAGE": "false"}).try_page is False
    off = local_client(ROOT, try_page=False)
    assert off.get("/is/try").status_code == 404 and off.get("/is/try/try.js").status_code == 404


def test_a_lambda_that_leaves_the_page_off_never_imports_it():
    code = (
        "import sys; from imageserving.app import create_app; from imageserving.settings import Settings; "
        f"create_app(Settings.from_env(storage='local', local_root={str(ROOT)!r})); "
        "print('imageserving.trypage' in sys.modules)"
    )
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "imageserving", "IS_LOG_FORMAT": "off"}
    env.pop("IS_TRY_PAGE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_template_turns_it_off_on_lambda_unless_asked():
    template = (ROOT / "template.yaml").read_text()
    block = re.search(r"\n  TryPage:\n(?:    .*\n)+", template).group(0)
    assert 'Default: "false"' in block
    assert "IS_TRY_PAGE: !Ref TryPage" in template
    assert 'Path: /is/try, PayloadFormatVersion: "2.0"' in template and 'Path: "/is/try/{proxy+}"' in template


def test_through_mangum_the_page_is_a_text_body():
    """On Lambda (TryPage "true"): API Gateway gets the HTML as text, not base64."""
    from mangum import Mangum
    from test_events import load_event

    from imageserving.app import create_app

    event = load_event("image.json")
    event.update(rawPath="/is/try", rawQueryString="")
    event["requestContext"]["http"]["path"] = "/is/try"
    handler = Mangum(create_app(Settings.from_env({}, storage="local", local_root=str(ROOT))), lifespan="off")
    reply = handler(event, None)
    assert reply["statusCode"] == 200 and reply["isBase64Encoded"] is False
    assert reply["body"].startswith("<!doctype html>") and 'src="try/try.js"' in reply["body"]


# ---------------------------------------------------------------------------------------- packaged


def test_the_package_build_carries_the_page_files(tmp_path):
    """setuptools' build_py (what a wheel, so `pip install .`, is made of), run on a clean copy of
    the project: without pyproject's package-data the page's files are left out. `sam build`
    copies the package folder whole (tests/test_built_handler.py checks the build)."""
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT / "functions" / "imageserving" / "imageserving",
        copy / "functions" / "imageserving" / "imageserving",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    build = tmp_path / "build"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(build)],
        cwd=copy,
        check=True,
        capture_output=True,
    )
    for name in ("index.html", "try.js", "try.css", "examples.json"):
        assert (build / "imageserving" / "try" / name).read_bytes() == (PAGE / name).read_bytes()


# ---------------------------------------------------------------------------------------- examples


def test_the_readme_examples_are_on_the_page():
    readme = (ROOT / "README.md").read_text()
    documented = re.findall(r"^\| http://127\.0\.0\.1:8080/is/(\S+) \|", readme, re.MULTILINE)
    assert len(documented) >= 10
    missing = set(documented) - {path for _, path in _examples()}
    assert not missing, f"README examples missing from imageserving/try/examples.json (add them): {sorted(missing)}"


@pytest.mark.parametrize("label, path", _examples())
def test_every_example_answers_as_labelled(client, label, path):
    reply = client.get(f"/is/{path}")
    if "default image" in label and "off" not in label:
        assert reply.status_code == 200 and reply.headers["x-is-default-image"] == "1"
    elif "error image" in label:
        assert reply.status_code == 200 and reply.headers["x-is-error"]
    elif "error" in label or "403" in label:
        assert reply.status_code == 403 and reply.headers["x-is-error"]
    else:
        assert reply.status_code == 200 and "x-is-error" not in reply.headers, reply.text


def test_the_script_never_writes_html():
    script = (PAGE / "try.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "<script>" not in (PAGE / "index.html").read_text()  # the CSP forbids inline script


# ---------------------------------------------------------------------------------------- a real browser


def _browser():
    """Headless Chromium through chromedriver, or the reason why there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[dev]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return None, "no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1100")
    # An explicit driver path: Selenium Manager never goes to the network for one.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver)), ""


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (each test loads the page afresh)."""
    driver, reason = _browser()
    if driver is None:
        if os.environ.get("IS_BROWSER_TEST") == "required":
            pytest.fail(f"IS_BROWSER_TEST=required but {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real local server over a copy of the sample bucket plus a staging catalog whose error
    messages echo the offending value (ErrorDetail=2), to feed the page markup."""
    root = tmp_path_factory.mktemp("bucket")
    for folder in ("catalogs", "images", "static"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / "catalogs" / "staging.ini").write_text("RootId=staging\nRootPath=sample/\nErrorDetail=2\n")
    with running_server(root, env={"IS_LOG_FORMAT": "off"}) as base:
        yield base


def _wait(driver, script: str, timeout: float = 15.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def _open(driver, url: str) -> None:
    """A fresh page load (the module shares one browser; a hash-only change would not reload)."""
    driver.get("about:blank")
    driver.get(url)
    _wait(driver, "return document.querySelectorAll('button.example').length > 20")


def _table(driver, table_id: str) -> dict[str, str]:
    return driver.execute_script(
        "var out = {}; document.querySelectorAll('#' + arguments[0] + ' tbody tr').forEach(function (tr) {"
        "  if (tr.cells.length === 2) { out[tr.cells[0].textContent] = tr.cells[1].textContent; } });"
        "return out;",
        table_id,
    )


def _pick(driver, path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'button.example[data-url="{path}"]').click()


def test_in_chromium_an_example_shows_its_image_headers_and_properties(browser, served, tmp_path):
    _open(browser, served + "/is/try")
    # Smart Imaging keeps an explicit fmt=png, so Chrome's Accept still gets the PNG.
    _pick(browser, "/is/image/sample/rose?wid=300&fmt=png")
    _wait(browser, "var i = document.getElementById('image'); return i.complete && i.naturalWidth > 0")
    size = browser.execute_script("var i = document.getElementById('image'); return [i.naturalWidth, i.naturalHeight]")
    assert size == [300, 225]
    _wait(browser, "return document.querySelector('#headers tbody th') !== null")
    headers = _table(browser, "headers")
    assert headers["content-type"] == "image/png" and headers["etag"]
    assert browser.find_element("id", "status").text.startswith("200")
    _wait(browser, "return document.querySelectorAll('#imageprops tbody tr').length > 5")
    _wait(browser, "return document.querySelectorAll('#props tbody tr').length > 5")
    props, imageprops = _table(browser, "props"), _table(browser, "imageprops")
    assert props["image.width"] == "300" and props["image.type"] == "image/png"
    assert imageprops["image.width"] == "1600" and imageprops["image.timeStamp"]  # "\:" unescaped by the page
    assert ":" in imageprops["image.timeStamp"] and "\\" not in imageprops["image.timeStamp"]
    shot = tmp_path / "try-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("IS_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["IS_SCREENSHOT_DIR"]) / shot.name)
    print(f"screenshot: {shot}")


def test_in_chromium_the_error_model_answers_in_every_format(browser, served):
    _open(browser, served + "/is/try")
    # The error image: a 200 image, marked with its kind.
    _pick(browser, "/is/image/Shop/SKU123?wid=abc")
    _wait(browser, "var i = document.getElementById('image'); return i.complete && i.naturalWidth > 0")
    assert _table(browser, "headers")["x-is-error"] == "bad_request"
    bodies = {
        "/is/image/sample/rose?wid=abc&req=props,javascript": "error.title='Invalid request'",
        "/is/image/sample/rose?wid=abc&req=props,xml": '<property name="title" value="Invalid request"/>',
        "/is/image/sample/rose?wid=abc&req=props,json": '/*jsonp*/s7jsonError({"message":"Invalid request"',
        "/is/image/sample/nothing?req=props": "error.title=Image not found",
    }
    for path, expected in bodies.items():
        _pick(browser, path)
        _wait(browser, "var b = document.getElementById('body'); return !b.hidden && b.textContent.length > 0")
        assert expected in browser.find_element("id", "body").text, path
        assert browser.find_element("id", "status").text.startswith("403")
    # The text format is also shown as a table.
    assert _table(browser, "body-props")["error.title"] == "Image not found"


def test_in_chromium_markup_from_a_url_or_a_reply_is_shown_as_text(browser, served):
    from selenium.webdriver.common.by import By

    _open(browser, served + "/is/try")
    attack = "<img src=x onerror=window.__xss=1>"
    box = browser.find_element(By.ID, "url")
    # Echoed by the server (ErrorDetail=2) into the error body and the property table.
    box.clear()
    box.send_keys(f"/is/image/staging/rose?wid={attack}")
    browser.find_element(By.ID, "send").click()
    _wait(browser, "var b = document.getElementById('body'); return !b.hidden && b.textContent.length > 0")
    assert attack.replace("=", "\\=") in browser.find_element(By.ID, "body").text
    # Not sent (another origin), and echoed by the page itself.
    box.clear()
    box.send_keys(f"https://elsewhere.example/{attack}")
    browser.find_element(By.ID, "send").click()
    _wait(browser, "return document.getElementById('status').textContent === 'not sent'")
    assert attack in browser.find_element(By.ID, "sent").text
    assert browser.execute_script("return window.__xss === undefined")
    assert browser.execute_script("return document.querySelectorAll('img').length") == 1  # the page's own


def test_in_chromium_a_shared_link_opens_and_the_accept_choice_is_what_smart_imaging_sees(browser, served):
    from urllib.parse import quote

    from selenium.webdriver.support.ui import Select

    _open(browser, served + "/is/try#" + quote("/is/image/sample/rose?wid=400", safe=""))
    loaded = "var i = document.getElementById('image'); return i.complete && i.naturalWidth === 400"
    _wait(browser, loaded)
    _wait(browser, "return document.querySelector('#headers tbody th') !== null")
    assert browser.find_element("id", "url").get_attribute("value") == "/is/image/sample/rose?wid=400"
    first = _table(browser, "headers")
    assert first["content-type"] == "image/avif" and first["x-is-smart-imaging"].startswith("avif")
    Select(browser.find_element("id", "accept")).select_by_value("any")  # resends as curl would
    _wait(
        browser,
        "var h = document.querySelector('#headers tbody td'); return h !== null && "
        "Array.from(document.querySelectorAll('#headers tbody tr')).some(function (tr) {"
        "  return tr.cells[0].textContent === 'content-type' && tr.cells[1].textContent === 'image/jpeg'; })",
    )
    assert "x-is-smart-imaging" not in _table(browser, "headers")
    # A link pasted while the page is open (hash change only): the page follows it.
    browser.execute_script("location.hash = arguments[0]", quote("/is/image/sample/tulip?fmt=png-alpha", safe=""))
    _wait(browser, "return document.getElementById('url').value === '/is/image/sample/tulip?fmt=png-alpha'")
    _wait(browser, "var i = document.getElementById('image'); return i.complete && i.naturalWidth > 0")
    _wait(browser, "return document.getElementById('status').textContent.indexOf('200') === 0")
    assert _table(browser, "headers")["content-type"] == "image/png"
