"""Export subcommands: `export` (every format, each validated), `report` and `bundle`."""
from __future__ import annotations

from sentilite.shared.extras import require


def add_commands(sub) -> None:
    from sentilite.runtime.bundled import DEFAULT_MODEL, NAMES

    from .registry import FORMATS, PRECISIONS

    p = sub.add_parser("export", help="export a trained model folder to TFLite and ONNX, each file validated")
    p.add_argument("model_dir", help="folder written by `sentilite train`")
    p.add_argument("--data", help="an IMDB model's data: the IMDB folder or .tar.gz (default: $IMDB_DATA, else the "
                                  "cache/download); a model trained on your own files reads them again from its "
                                  "config.json")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an IMDB copy with fewer than 12,500 reviews per class and split")
    p.add_argument("--formats", nargs="+", choices=FORMATS, help="default: all")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, help="default: all")
    p.add_argument("--calibration-reviews", type=int, help="training reviews for int8 calibration")
    p.add_argument("--validation-reviews", type=int, help="validation reviews for the parity check (default: all)")
    p.add_argument("--test-reviews", type=int, help="test reviews to evaluate each file on (default: all 25,000)")
    p.add_argument("--skip-failing", action="store_true",
                   help="leave out a file that fails its check against the Keras model (the reason goes in the "
                        "manifest's skipped) and keep the others, instead of stopping the export")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_export)

    p = sub.add_parser("report", help="parity.json, report.md and charts for every package under a folder")
    p.add_argument("folder", help="folder holding one exported package per cell, e.g. artifacts")
    p.set_defaults(func=run_report)

    p = sub.add_parser("bundle", help="copy an exported package's runtime files into sentilite's bundled model")
    p.add_argument("package_dir", help="folder written by `sentilite export`, e.g. artifacts/gru")
    p.add_argument("--out", help="default: the package's own bundled model folder (runtime/models/NAME)")
    p.add_argument("--name", default=DEFAULT_MODEL, choices=NAMES, help="the bundled model (default: %(default)s)")
    p.add_argument("--files", nargs="+", help="files to bundle (default: model.int8.tflite model.dynamic-int8.onnx)")
    p.add_argument("--commit", help="commit the model was trained from (default: git rev-parse HEAD of the tree "
                                    "holding PACKAGE_DIR)")
    p.set_defaults(func=run_bundle)


def run_export(args) -> int:
    require("export", "train", "tensorflow", "keras", "onnx", "onnxruntime", "ai_edge_litert")
    from .package import ExportConfig, export_package

    options = {}
    for name in ("formats", "precisions"):
        if getattr(args, name):
            options[name] = tuple(getattr(args, name))
    for name in ("calibration_reviews", "validation_reviews", "test_reviews"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.skip_failing:
        options["skip_failing"] = True
    # --data names IMDB's archive or folder; a model of a user's files reads those config.json names
    manifest = export_package(args.model_dir, args.data, ExportConfig(**options),
                              allow_incomplete=args.allow_incomplete)
    for skipped in manifest.get("skipped", ()):
        print(f"{skipped['file']:<28} left out: {skipped['reason']}")
    for a in manifest["artifacts"]:
        ev = a["eval"]
        print(f"{a['file']:<28} {a['bytes']:>10,} bytes  accuracy {ev['accuracy']:.4f}  "
              f"agreement {ev['agreement']:.4%}  max diff {ev['max_abs_diff']:.2g}")
    return 0


def run_report(args) -> int:
    require("report", "train", "matplotlib")
    from .report import write_report

    path = write_report(args.folder)
    print(path.read_text())
    return 0


def run_bundle(args) -> int:
    from .bundle import BUNDLED_FILES, bundle

    manifest = bundle(args.package_dir, args.out, tuple(args.files or BUNDLED_FILES), name=args.name,
                      commit=args.commit)
    provenance = manifest["bundle"]
    print(f"{args.name}: commit {provenance['commit']}, {provenance['date']}")
    for a in manifest["artifacts"]:
        print(f"{a['file']:<28} {a['bytes']:>10,} bytes  accuracy {(a.get('eval') or {}).get('accuracy')}")
    return 0
