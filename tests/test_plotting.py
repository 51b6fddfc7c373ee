import subprocess
import sys

import matplotlib
import pytest
import torch
from PIL import Image

from my_utils import plotting


def test_use_svg_display_works_on_current_ipython():
    plotting.use_svg_display()  # IPython 9 removed the function d2l called here


def test_plot_draws_all_curves():
    matplotlib.use('Agg')
    x = torch.arange(0, 3, 0.1)
    plotting.plot(x, [x, x ** 2], 'x', 'f(x)', legend=['x', 'x^2'])
    axes = plotting.plt.gca()
    assert len(axes.lines) == 2
    assert axes.get_xlabel() == 'x'
    plotting.plt.close('all')


def test_show_images_takes_tensors_and_pil_images():
    matplotlib.use('Agg')
    images = [torch.rand(28, 28), torch.rand(1, 28, 28), torch.rand(3, 32, 32),
              Image.new('RGB', (32, 32))]
    axes = plotting.show_images(images, 1, 4, titles=['a', 'b', 'c', 'd'])
    assert [ax.get_title() for ax in axes] == ['a', 'b', 'c', 'd']
    plotting.plt.close('all')


@pytest.mark.parametrize('kwargs, message', [
    (dict(titles=['a', 'b']), 'show_images got 2 titles for 3 images: pass one title per image'),
    (dict(num_rows=0), 'num_rows must be a positive int, got 0'),
    (dict(num_cols=1.5), 'num_cols must be a positive int, got 1.5'),
])
def test_show_images_mistakes_are_one_clear_error(kwargs, message):
    matplotlib.use('Agg')
    args = dict(imgs=[torch.rand(8, 8)] * 3, num_rows=1, num_cols=3)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        plotting.show_images(**args)
    assert message in str(info.value)
    assert plotting.plt.get_fignums() == []  # raised before a figure was made


def test_show_images_needs_titles_only_for_the_images_shown():
    matplotlib.use('Agg')
    axes = plotting.show_images([torch.rand(8, 8)] * 5, 1, 2, titles=['a', 'b'])  # d2l shows 2 of 5
    assert [ax.get_title() for ax in axes] == ['a', 'b']
    plotting.plt.close('all')


def test_animator_is_silent_headless_and_saves(tmp_path, capsys):
    animator = plotting.Animator(xlabel='epoch', xlim=[1, 3], legend=['train loss', 'test acc'])
    for epoch in range(1, 4):
        animator.add(epoch, (1.0 / epoch, 0.5 + 0.1 * epoch))
    assert animator.Y[0] == [1.0, 0.5, 1.0 / 3]
    path = animator.save(tmp_path / 'curves.png')
    assert path.stat().st_size > 1000
    animator.close()
    assert capsys.readouterr().out == ''
    assert plotting.plt.get_fignums() == []  # never registered with pyplot: no window, no stray figure


def test_animator_skips_missing_points():
    animator = plotting.Animator(legend=['a', 'b'])
    animator.add(1, (0.5, None))
    assert animator.Y == [[0.5], []]


def test_animator_in_a_script_prints_nothing():
    code = ('import my_utils as mu\n'
            'a = mu.Animator(legend=["x"])\n'
            'for i in range(3): a.add(i, i)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''


def test_animator_updates_one_display_in_place(monkeypatch):
    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def fake_display(obj, display_id=False):
        shown.append(obj)
        return Handle()

    import IPython.display
    monkeypatch.setattr(IPython.display, 'display', fake_display)
    animator = plotting.Animator(legend=['loss'])
    animator._live = True  # as in a notebook kernel
    for epoch in range(3):
        animator.add(epoch, 1.0)
    assert len(shown) == 1 and len(updates) == 2
    assert shown[0].format == 'png' and shown[0].data[:4] == b'\x89PNG'


def live_figure():
    """train_ch6's Animator after two epochs of d2l's five points."""
    animator = plotting.Animator(xlabel='epoch', xlim=[0, 2],
                                 legend=['train loss', 'train acc', 'test acc'])
    for k in range(1, 11):
        animator.add(k / 5, (2.3 / (1 + k), 0.1 + k / 12, None if k % 5 else 0.2 + k / 12))
    return animator


def test_animator_figure_is_readable_nothing_clipped_legend_off_the_curves():
    animator = live_figure()
    png = animator._png()  # drawn as the notebook shows it
    fig, ax = animator.fig, animator.axes[0]
    fig.draw_without_rendering()
    inside = fig.bbox
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    ticks = ([t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
             + [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1])  # drawn
    texts = [t for t in [ax.xaxis.label, ax.yaxis.label] + ticks
             if t.get_visible() and t.get_text()]
    assert ax.get_xlabel() == 'epoch' and len(texts) > 6
    (legend,) = fig.legends
    for artist in texts + [legend]:
        box = artist.get_window_extent()
        assert (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
                and box.y1 <= inside.y1), (artist, box, inside)
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())  # below the axes
    assert [t.get_text() for t in legend.get_texts()] == ['train loss', 'train acc', 'test acc']
    # d2l's size, twice the pixels: 700 x 500, shown at 350 x 250
    assert tuple(fig.get_size_inches()) == (3.5, 2.5)
    image = Image.open(__import__('io').BytesIO(png))
    assert image.size == (700, 500)
    from IPython.display import Image as Shown
    shown = Shown(data=png, format='png', retina=True)
    assert (shown.width, shown.height) == (350, 250)


def test_animator_shows_its_axes_before_the_first_point(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    import IPython.display
    monkeypatch.setattr(IPython.display, 'display',
                        lambda obj, display_id=False: shown.append(obj) or Handle())
    animator = plotting.Animator(xlabel='epoch', legend=['loss'])
    animator._live = True
    animator.show()
    animator.add(1, 0.5)
    assert len(shown) == 2 and shown[0].data[:4] == b'\x89PNG'
