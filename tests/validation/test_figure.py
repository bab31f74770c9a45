"""plots/extractor.png from a result of two feature spaces (synthetic numbers): a PNG with one panel each, also
where a floor is 0 (no place on a log axis) and the sensitivity is undefined."""

import io

from PIL import Image

from dcgan_lab.validation.figure import render


def space(floor, sensitivity, ok=True):
    fid = [floor, 2.0, 5.0, 9.0, 30.0]
    return {"floor_fid": floor, "sensitivity": sensitivity, "ok": ok, "failed_checks": [] if ok else ["fid_rises"],
            "disturbances": {"gaussian_noise": {"fid": fid, "spearman_fid": 1.0},
                             "mode_dropping": {"fid": [0.3, 1.0, 0.8, 4.0, 8.0], "spearman_fid": 0.9}}}


def test_one_panel_per_extractor_as_a_png():
    png = render({"extractors": {"dcgan-lab-classifier": space(0.04, 35.0), "inception-v3-compat": space(0.0, None,
                                                                                                          ok=False)}})
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 1.8 * image.height  # two panels side by side
    one = Image.open(io.BytesIO(render({"extractors": {"dcgan-lab-classifier": space(0.04, 35.0)}})))
    assert one.width < image.width
