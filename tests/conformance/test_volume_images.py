"""Volumes cloned from catalogue images: each image is also a child of the
image_tpl mixin, which applies to storage (OCCI's os_tpl applies to compute)."""

from __future__ import annotations

from tests.conftest import SITE, STORAGE, Client, category

IMAGE_TPL = "http://schemas.occi-server.org/occi/infrastructure#image_tpl"
DEBIAN = SITE + "image_tpl#debian-12"


def test_the_query_interface_offers_each_image_for_volumes(client: Client) -> None:
    mixins = {m["scheme"] + m["term"]: m for m in client.json("/-/")["mixins"]}
    parent, debian = mixins[IMAGE_TPL], mixins[DEBIAN]
    assert parent["applies"] == [STORAGE] and parent["location"] == "/mixin/image_tpl/"
    assert debian["depends"] == [IMAGE_TPL] and debian["applies"] == [STORAGE]
    assert debian["location"] == "/mixin/image_tpl/debian-12/"
    assert debian["attributes"]["occi.storage.size"]["default"] == 2.0


def test_a_volume_takes_the_size_of_its_image_unless_asked_for_more(client: Client) -> None:
    exact = client.create(STORAGE, mixins=(DEBIAN,))
    attributes = client.attributes(exact)
    assert attributes["occi.storage.size"] == 2.0
    assert "clone of image debian-12" in attributes["occi.storage.state.message"]
    assert DEBIAN in client.json(exact)["mixins"]
    larger = client.create(STORAGE, "X-OCCI-Attribute: occi.storage.size=5.5", mixins=(DEBIAN,))
    assert client.attributes(larger)["occi.storage.size"] == 5.5
    assert client.get(f"/storage/?category={IMAGE_TPL.replace('#', '%23')}",
                      accept="text/uri-list").get_data(as_text=True).count("/storage/") == 2


def test_a_volume_smaller_than_its_image_is_refused_and_not_stored(client: Client) -> None:
    response = client.post_text("/storage/", [
        category(STORAGE, "kind"), category(DEBIAN, "mixin"),
        "X-OCCI-Attribute: occi.storage.size=1.0"])
    assert response.status_code == 400
    assert "at least" in response.get_data(as_text=True)
    assert client.get("/storage/", accept="text/uri-list").status_code in (200, 204)
    assert "/storage/" not in client.get("/storage/", accept="text/uri-list").get_data(
        as_text=True)


def test_image_templates_apply_to_volumes_only_and_one_at_a_time(client: Client) -> None:
    compute = client.post_text("/compute/", [
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"',
        category(DEBIAN, "mixin")])
    assert compute.status_code == 400 and "does not apply to compute" in compute.get_data(
        as_text=True)
    both = client.post_text("/storage/", [category(STORAGE, "kind"), category(DEBIAN, "mixin"),
                                          category(SITE + "image_tpl#alpine-3", "mixin")])
    assert both.status_code == 409
    parent = client.post_text("/storage/", [category(STORAGE, "kind"),
                                            category(IMAGE_TPL, "mixin"),
                                            "X-OCCI-Attribute: occi.storage.size=1"])
    assert parent.status_code == 400 and "/mixin/image_tpl/" in parent.get_data(as_text=True)


def test_the_image_of_a_volume_cannot_be_changed_later(client: Client) -> None:
    volume = client.storage(3.0)
    response = client.post_text(volume, [category(DEBIAN, "mixin")])
    assert response.status_code in (400, 409)
    assert DEBIAN not in client.json(volume)["mixins"]
