"""d2l's chapter 3 training helpers, fixed; chapter 6's loop is train6.py (this module does not
use it).

The d2l names, signatures and printed lines are kept, so book code runs unchanged with
`import my_utils as d2l`. The shared parts live in modules with one job each: evaluation
(accuracy, a batch's loss), history (History), checks (the errors for bad inputs).
What differs from d2l v0.14 (each one is tested):

- evaluation runs under `torch.no_grad()` in eval mode and puts every module back in the
  mode it was in; the data follow the net to its device;
- `train_epoch_ch3` takes a loss with reduction 'none' or 'mean' with either a torch
  optimizer (the mean is backpropagated) or a d2l updater such as `sgd(params, lr, batch_size)`
  (the sum is backpropagated and `updater(batch_size)` called, as d2l does);
- `train_ch3` does not assert on the results.
"""
import math

import torch
from torch import nn

from .checks import check_num_epochs, empty_error
from .evaluation import (_batch_size, _evaluating, _loss_sum_and_mean, _module_device,
                         _num_correct, _to, accuracy, evaluate_accuracy, evaluate_accuracy_gpu)
from .history import History, TrainingDiverged  # noqa: F401 (my_utils.training.History)
from .plotting import Animator


def train_epoch_ch3(net, train_iter, loss, updater):
    """Train a model for one epoch; returns (mean train loss, train accuracy).

    `updater` is a torch optimizer (the batch mean of the loss is backpropagated) or a d2l
    updater called as `updater(batch_size)` (the batch sum is backpropagated, as d2l does, so
    `sgd(params, lr, batch_size)` divides it back to a mean). `loss` may return per-example
    losses (reduction='none', d2l's own losses) or their mean.
    """
    if isinstance(net, nn.Module):
        net.train()
    device = _module_device(net)
    reduction = getattr(loss, 'reduction', 'mean')
    is_optimizer = isinstance(updater, torch.optim.Optimizer)
    loss_sum, correct, count = 0.0, 0.0, 0
    for X, y in train_iter:
        X, y = _to(X, device), _to(y, device)
        y_hat = net(X)
        l = loss(y_hat, y)
        n = _batch_size(y)
        l_sum, l_mean = _loss_sum_and_mean(l, reduction, n)
        if is_optimizer:
            updater.zero_grad()
            l_mean.backward()
            updater.step()
        else:
            l_sum.backward()
            updater(n)
        # Summed as tensors and read once at the end: no host sync per batch.
        loss_sum = loss_sum + l_sum.detach()
        correct = correct + _num_correct(y_hat.detach(), y)
        count += n
    if count == 0:
        raise empty_error('train_iter')
    return float(loss_sum) / count, float(correct) / count


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater, *, animate=True,
              verbose=False):
    """Train a model (chapter 3). Unlike d2l it asserts nothing about the results.

    verbose=True prints the final `loss ..., train acc ..., test acc ...` line.
    """
    check_num_epochs(num_epochs)
    animator = None
    if animate:
        animator = Animator(xlabel='epoch', xlim=[1, max(num_epochs, 2)], ylim=[0.3, 0.9],
                            legend=['train loss', 'train acc', 'test acc'])
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        if animator is not None:
            animator.add(epoch + 1, train_metrics + (test_acc,))
    train_loss, train_acc = train_metrics
    if verbose:
        print(f'loss {train_loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}')


def predict_ch3(net, test_iter, n=6):
    """Predict labels (chapter 3) and show the first n images with true and predicted labels."""
    from .datasets import get_fashion_mnist_labels  # here, so training.py does not need datasets.py
    from .plotting import show_images
    for X, y in test_iter:
        break
    else:
        raise empty_error('test_iter')
    with _evaluating(net), torch.no_grad():
        preds = net(_to(X, _module_device(net))).argmax(dim=1)
    n = min(n, len(y))
    trues = get_fashion_mnist_labels(y[:n].cpu())
    preds = get_fashion_mnist_labels(preds[:n].cpu())
    titles = [true + '\n' + pred for true, pred in zip(trues, preds)]
    images = X[:n].detach().cpu()
    side = math.isqrt(images[0].numel()) if images.dim() == 2 else 0
    if side and side * side == images[0].numel():  # flattened grey images
        images = images.reshape(n, side, side)
    show_images(images, 1, n, titles=titles)


__all__ = ['accuracy', 'evaluate_accuracy', 'train_epoch_ch3', 'train_ch3', 'predict_ch3',
           'evaluate_accuracy_gpu']
