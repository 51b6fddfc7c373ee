"""Plots: d2l's helpers, and an Animator that redraws one figure in place in a notebook."""
import io

import matplotlib
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from .arguments import is_int
from .devices import _in_notebook


def use_svg_display():
    """Use the svg format to display a plot in Jupyter."""
    # IPython 9 removed IPython.display.set_matplotlib_formats; this is where it lives now.
    try:
        from matplotlib_inline import backend_inline
    except ImportError:  # plain Python without Jupyter: nothing to configure
        return
    backend_inline.set_matplotlib_formats('svg')


def set_figsize(figsize=(3.5, 2.5)):
    """Set the figure size for matplotlib."""
    use_svg_display()
    plt.rcParams['figure.figsize'] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    """Set the axes for matplotlib."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None,
         ylim=None, xscale='linear', yscale='linear',
         fmts=('-', 'm--', 'g-.', 'r:'), figsize=(3.5, 2.5), axes=None):
    """Plot data points."""
    if legend is None:
        legend = []
    set_figsize(figsize)
    axes = axes if axes else plt.gca()

    def has_one_axis(X):  # True if X is a 1-d tensor or list
        return (hasattr(X, 'ndim') and X.ndim == 1
                or isinstance(X, list) and not hasattr(X[0], '__len__'))

    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


def _as_image(img):
    """A tensor (C,H,W), (H,W,C) or (H,W), or a PIL image, as something imshow takes."""
    if hasattr(img, 'detach'):
        img = img.detach().cpu()
        if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
            img = img.permute(1, 2, 0)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        return img.numpy()
    return img


def _check_grid(imgs, num_rows, num_cols, titles):
    for name, n in (('num_rows', num_rows), ('num_cols', num_cols)):
        if not is_int(n, minimum=1):
            raise ValueError(f'show_images: {name} must be a positive int, got {n!r}')
    shown = min(len(imgs), num_rows * num_cols)  # d2l draws the first num_rows * num_cols
    if titles is not None and len(titles) < shown:
        raise ValueError(f'show_images got {len(titles)} titles for {shown} images: pass one title '
                         f'per image (titles=labels[:{shown}]) or titles=None')


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a list of images (tensors or PIL images)."""
    _check_grid(imgs, num_rows, num_cols, titles)  # before a figure exists: a mistake leaves none behind
    figsize = (num_cols * scale, num_rows * scale)
    _, axes = plt.subplots(num_rows, num_cols, figsize=figsize, squeeze=False)
    axes = axes.flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        image = _as_image(img)
        ax.imshow(image, cmap='gray' if getattr(image, 'ndim', 3) == 2 else None)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes


class Animator:
    """For plotting data in animation.

    The figure is built outside pyplot, so it never opens a window, never shows up a
    second time at the end of the cell, and needs no closing. In a notebook one display
    handle is updated in place with a PNG of the figure, so text printed in the same cell
    stays; elsewhere (scripts, tests, CI) it draws nothing until `save` is called.

    Readable at d2l's size: a constrained layout keeps the labels, ticks and legend inside
    the figure, the legend sits below the axes, out of the curves' way, and the PNG has twice
    the pixels (dpi 200), shown at the figure's size, so it is sharp on high-DPI screens.
    """
    dpi = 200  # pixels per inch of the PNG; displayed at 100 per inch

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None,
                 ylim=None, xscale='linear', yscale='linear',
                 fmts=('-', 'm--', 'g-.', 'r:'), nrows=1, ncols=1,
                 figsize=(3.5, 2.5)):
        if legend is None:
            legend = []
        self.fig = Figure(figsize=figsize, dpi=100, layout='constrained')
        self.axes = self.fig.subplots(nrows, ncols, squeeze=False).flatten()
        # The legend is the figure's (below the axes), so set_axes is not given it.
        self.config_axes = lambda: set_axes(
            self.axes[0], xlabel, ylabel, xlim, ylim, xscale, yscale, None)
        self.legend = list(legend)
        self._autoscale = (xlim is None, ylim is None)
        self.X, self.Y, self.fmts = None, None, fmts
        self._lines = None
        self._handle = None
        self._live = _in_notebook()

    def add(self, x, y):
        """Add data points (one per curve) and redraw."""
        if not hasattr(y, '__len__'):
            y = [y]
        n = len(y)
        if not hasattr(x, '__len__'):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(b)
        self._draw()
        if self._live:
            self._show()

    def show(self):
        """Show the figure now, before its first point (in a notebook; elsewhere nothing)."""
        self._draw()
        if self._live:
            self._show()

    def _draw(self):
        ax = self.axes[0]
        if self._lines is None:  # the axes and legend are set once, the lines then updated
            self.config_axes()
            # set_xlim(None) in set_axes freezes a limit: let the data set the ones not given.
            ax.set_autoscalex_on(self._autoscale[0])
            ax.set_autoscaley_on(self._autoscale[1])
            self._lines = [ax.plot([], [], fmt)[0] for fmt in self.fmts[:len(self.legend)]]
            if self.legend:
                self._add_legend(ax)
        for i, (x, y) in enumerate(zip(self.X or [], self.Y or [])):
            if i == len(self._lines):  # more curves than legend entries
                self._lines.append(ax.plot([], [], self.fmts[i % len(self.fmts)])[0])
            line = self._lines[i]
            line.set_data(x, y)
            # A lone point drawn as a line is invisible: mark it (the first point of a run).
            line.set_marker('o' if len(x) == 1 else 'None')
        ax.relim()
        ax.autoscale_view()

    def _add_legend(self, ax):
        style = dict(ncol=len(self.legend), fontsize='small', frameon=False, handlelength=1.5,
                     columnspacing=1.0)
        try:  # below the axes, with room made for it by the constrained layout
            self.fig.legend(self._lines, self.legend, loc='outside lower center', **style)
        except ValueError:  # matplotlib < 3.7 has no 'outside': the axes' legend, below them
            ax.legend(self._lines, self.legend, loc='upper center', bbox_to_anchor=(0.5, -0.3),
                      **style)

    def _show(self):
        from IPython.display import Image, display
        image = Image(data=self._png(), format='png', retina=True)  # shown at half its pixels
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def _png(self):
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format='png', dpi=self.dpi)
        return buffer.getvalue()

    def save(self, path):
        """Save the figure as it is now (the format follows the file name)."""
        if self.X:
            self._draw()
        self.fig.savefig(path, dpi=self.dpi)
        return path

    def close(self):
        """Kept for code that calls it; the figure lives outside pyplot, so there is nothing to free."""
        self._handle = None


__all__ = ['use_svg_display', 'set_figsize', 'set_axes', 'plot', 'show_images', 'Animator', 'plt', 'matplotlib']
