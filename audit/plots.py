"""Figures made from stored runs (no training): a table's rows, one panel each."""
import math

from matplotlib import pyplot as plt


def rows_figure(lab, rows, metric='test_acc'):
    """One small panel per row with each seed's test accuracy per epoch; rows with no run are left out."""
    rows = [r for r in rows if lab.records(r)]
    if not rows:
        print('no stored runs to plot yet')
        return None
    cols = min(4, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False,
                             sharey=True, layout='constrained')
    for ax, row_id in zip(axes.flat, rows):
        for record in lab.records(row_id):
            accs = record['history']['test_acc']
            ax.plot(range(1, len(accs) + 1), accs, lw=1, label=f"seed {record['seed']}")
        reported = lab.rows[row_id].get('reported')
        if reported is not None:
            ax.axhline(reported, color='k', ls=':', lw=1, label='reported')
        ax.set_title(row_id, fontsize=8)
        ax.set_xlabel('epoch', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel('test accuracy', fontsize=8)
    axes[0][0].legend(fontsize=6)
    plt.show()
    return fig
