"""Execute one notebook cell by cell: the only grading code that runs inside the sandbox.

``python runner.py IN.ipynb OUT.ipynb --cell-timeout S --output-limit BYTES``

Started by :mod:`grader.sandbox` inside bubblewrap, next to the learner's kernel (this
file is copied there alone; it imports nothing of the course). It decides nothing: it
runs every cell, keeps going after errors, and writes the executed notebook for the
trusted grader outside to read back and judge. It prints one ``progress <i> <n>`` line
per cell so that the watchdog outside sees it is alive.

- A cell that runs past ``--cell-timeout`` is interrupted (KeyboardInterrupt, an error
  output); if the kernel ignores the interrupt it is restarted and the cell gets a
  ``CellTimeout`` error (later cells then run in the fresh kernel).
- A kernel that dies (``os._exit``, a crash, the memory limit) gives the cell that
  killed it and every later code cell a ``DeadKernel`` error.
- Output beyond ``--output-limit`` bytes (all cells together) is dropped; the cell where
  the limit was reached gets an ``OutputLimit`` error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output


RECORD_MIME = "application/vnd.micrograd-plus.check+json"  # grader/checks.py


def _error(name: str, message: str):
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


class CappedClient(NotebookClient):
    """A ``NotebookClient`` that keeps at most ``output_limit`` bytes of output."""

    output_limit = 50_000_000

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        data = msg.get("content", {}).get("data") if isinstance(msg.get("content"), dict) else None
        if isinstance(data, dict) and RECORD_MIME in data:  # recorded checks: a budget of their own
            self._recorded = getattr(self, "_recorded", 0) + size
            if self._recorded <= self.output_limit:
                return super().output(outs, msg, display_id, cell_index)
        self._seen = getattr(self, "_seen", 0) + size
        if self._seen > self.output_limit:
            if not getattr(self, "_capped", False):
                self._capped = True
                outs.append(
                    _error(
                        "OutputLimit",
                        f"this notebook printed more than {self.output_limit} bytes; "
                        "the rest of its output was dropped",
                    )
                )
            return None
        return super().output(outs, msg, display_id, cell_index)


async def run(nb, cwd: str, cell_timeout: int, output_limit: int) -> None:
    client = CappedClient(
        nb,
        timeout=cell_timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": cwd}},
    )
    client.output_limit = output_limit
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        for done, index in enumerate(code):
            print(f"progress {done} {len(code)}", flush=True)
            cell = nb.cells[index]
            try:
                # nbclient interrupts the cell at cell_timeout; the margin covers a kernel
                # that ignores the interrupt
                await asyncio.wait_for(client.async_execute_cell(cell, index), cell_timeout + 10)
            except asyncio.TimeoutError:
                cell.outputs.append(
                    _error(
                        "CellTimeout",
                        f"this cell ran longer than {cell_timeout} s and ignored "
                        "the interrupt; the kernel was restarted",
                    )
                )
                assert client.kc is not None and client.km is not None
                client.kc.stop_channels()
                await client.km.restart_kernel(now=True)  # type: ignore[misc]
                await client.async_start_new_kernel_client()
            except DeadKernelError:
                for later in code[done:]:
                    nb.cells[later].outputs.append(
                        _error(
                            "DeadKernel",
                            "the kernel died while this notebook ran (os._exit, a crash or the memory limit)",
                        )
                    )
                break
        print(f"progress {len(code)} {len(code)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--output-limit", type=int, default=50_000_000)
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    asyncio.run(run(nb, os.getcwd(), args.cell_timeout, args.output_limit))
    nbformat.write(nb, args.out)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
