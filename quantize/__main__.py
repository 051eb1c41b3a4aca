"""`python -m quantize`: the export steps from a shell.

python -m quantize export BASE_DIR OUT_DIR [--adapter DIR] [--types Q4_K_M,F16] [--name NAME]
python -m quantize convert HF_DIR OUT.gguf [--outtype f16]
python -m quantize quantize IN.gguf OUT.gguf --type Q4_K_M
python -m quantize check MODEL.gguf
"""

from __future__ import annotations

import argparse
import sys

from quantize import QUANT_TYPES, ExportError, check_gguf, convert_to_gguf, export_model, quantize_gguf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quantize", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="merge (optional) → f16 GGUF → quantized GGUFs → check")
    export.add_argument("base_dir")
    export.add_argument("out_dir")
    export.add_argument("--adapter", default=None, help="a LoRA adapter folder to merge first")
    export.add_argument("--types", default="Q4_K_M", help=f"comma-separated, from {', '.join(QUANT_TYPES)}")
    export.add_argument("--name", default="model")
    convert = commands.add_parser("convert", help="HF folder → GGUF")
    convert.add_argument("hf_dir")
    convert.add_argument("out_file")
    convert.add_argument("--outtype", default="f16")
    quantize = commands.add_parser("quantize", help="GGUF → quantized GGUF")
    quantize.add_argument("in_file")
    quantize.add_argument("out_file")
    quantize.add_argument("--type", required=True, choices=sorted(QUANT_TYPES))
    check = commands.add_parser("check", help="load a GGUF and generate a few tokens")
    check.add_argument("gguf")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            types = [t.strip() for t in args.types.split(",") if t.strip()]
            result = export_model(
                args.base_dir, args.out_dir, types, adapter_dir=args.adapter, name=args.name
            )
            for quant, path in result.files.items():
                print(f"{quant}\t{path}")
            for step, seconds in result.seconds.items():
                print(f"# {step}: {seconds:.1f} s", file=sys.stderr)
        elif args.command == "convert":
            print(convert_to_gguf(args.hf_dir, args.out_file, args.outtype))
        elif args.command == "quantize":
            print(quantize_gguf(args.in_file, args.out_file, args.type))
        else:
            print(repr(check_gguf(args.gguf)))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
