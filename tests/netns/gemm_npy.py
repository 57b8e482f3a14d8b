#!/usr/bin/env python3
"""Small float32 .npy matrices for the netns job tests, without numpy.

  gemm_npy.py make A.npy B.npy M K N SEED   random A (MxK) and B (KxN)
  gemm_npy.py check A.npy B.npy C.npy       C == A @ B within float32 rounding
"""
import ast
import random
import struct
import sys


def write(path, rows, cols, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    # .npy v1: magic, version, header length, header padded to 64 bytes with '\n'.
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%df" % len(values), *values))


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise SystemExit("%s: not a .npy file" % path)
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    else:
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise SystemExit("%s: not C-order float32" % path)
    rows, cols = header["shape"]
    body = data[start + hlen:]
    return rows, cols, list(struct.unpack("<%df" % (rows * cols), body[:4 * rows * cols]))


def main():
    if sys.argv[1] == "make":
        a, b, m, k, n, seed = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
        rng = random.Random(seed)
        write(a, m, k, [rng.uniform(-1, 1) for _ in range(m * k)])
        write(b, k, n, [rng.uniform(-1, 1) for _ in range(k * n)])
        return 0
    m, k, a = read(sys.argv[2])
    k2, n, b = read(sys.argv[3])
    rows, cols, c = read(sys.argv[4])
    if k != k2 or (rows, cols) != (m, n):
        print("shape mismatch: A %dx%d, B %dx%d, C %dx%d" % (m, k, k2, n, rows, cols))
        return 1
    worst = 0.0
    for i in range(m):
        for j in range(n):
            exact = sum(a[i * k + t] * b[t * n + j] for t in range(k))
            bound = 2 * k * 2.0 ** -24 * sum(abs(a[i * k + t] * b[t * n + j]) for t in range(k)) + 1e-30
            worst = max(worst, abs(c[i * n + j] - exact) / bound)
    if worst > 1.0:
        print("C differs from A @ B: worst error %.2f times the float32 bound" % worst)
        return 1
    print("C == A @ B (%dx%d, worst error %.3f of the float32 bound)" % (m, n, worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
