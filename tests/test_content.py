"""/is/content: static files from a catalog's static content table (protocol.md §10)."""


def test_static_file_with_type_and_caching(client):
    r = client.get("/is/content/sample/size-chart")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["sample"] == "size chart"
    assert "max-age=3600" in r.headers["cache-control"] and "last-modified" in r.headers
    assert client.get("/is/content/sample/size-chart?type=chart").status_code == 200
    assert client.get("/is/content/sample/size-chart?type=video").status_code == 403


def test_static_props_exists_userdata(client):
    r = client.get("/is/content/sample/size-chart?req=exists,json")
    assert r.text == '/*jsonp*/s7jsonResponse({"catalogRecord.exists":"1"},"");'
    assert '"catalogRecord.exists":"0"' in client.get("/is/content/sample/nope?req=exists,json").text
    assert client.get("/is/content/sample/size-chart?req=userdata").text == "unit=EU\r\nbrand=Sample\r\n"
    props = client.get("/is/content/sample/badge?req=props").text
    assert "path=badge.svg" in props and "length=" in props


def test_static_errors_never_use_images(client):
    r = client.get("/is/content/sample/missing-file")
    assert r.status_code == 403 and r.headers["x-is-error"] == "not_found"
    assert r.headers["content-type"].startswith("text/plain")
    assert client.get("/is/content/sample/badge?req=set").status_code == 403
