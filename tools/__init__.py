"""Commands that operate on this project's own training runs, outside the installed package.

Run from the repository root, e.g. `python tools/carry.py --run runs/NAME --out training/NAME`:
`carry` (a run's state small enough to commit), `add_noise` (noise inputs as a warm start) and
`resize_upsampling` (pix2pixHD's transposed convs to resize-convs). What they share with the
package (e.g. `rtgan.train.widen`, used by `--init-from` too) stays in it.
"""
