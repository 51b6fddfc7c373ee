"""Code from the d2l book and from the coursework reports, run unchanged against my_utils.

Only the epoch counts are lowered, to keep the suite fast. These use the real Fashion-MNIST.
"""
import os

import pytest
import torch
from torch import nn

import my_utils as d2l
import my_utils as mu

needs_data = pytest.mark.skipif(not os.environ.get('MY_UTILS_DATA'),
                                reason='real Fashion-MNIST not available: set MY_UTILS_DATA')


def test_linear_regression_from_scratch():
    true_w = torch.tensor([2, -3.4])
    true_b = 4.2
    features, labels = d2l.synthetic_data(true_w, true_b, 1000)
    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    lr, num_epochs, net, loss = 0.03, 3, d2l.linreg, d2l.squared_loss
    data_iter = d2l.load_array((features, labels), 10)
    for epoch in range(num_epochs):
        for X, y in data_iter:
            l = loss(net(X, w, b), y)
            l.sum().backward()
            d2l.sgd([w, b], lr, 10)
    assert (w.reshape(true_w.shape) - true_w).abs().max() < 0.05


@needs_data
def test_softmax_regression_concise_with_train_ch3_and_predict_ch3():
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def init_weights(m):
        if type(m) == nn.Linear:
            nn.init.normal_(m.weight, std=0.01)

    net.apply(init_weights)
    loss = nn.CrossEntropyLoss(reduction='none')
    trainer = torch.optim.SGD(net.parameters(), lr=0.1)
    num_epochs = 1
    d2l.train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)
    d2l.predict_ch3(net, test_iter)
    assert d2l.evaluate_accuracy(net, test_iter) > 0.7
    d2l.plt.close('all')


@needs_data
def test_lenet_with_train_ch6(capsys):
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
    lr, num_epochs = 0.9, 1
    d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f'training on {d2l.try_gpu()}'
    assert out[1].startswith('loss ') and ', train acc ' in out[1] and ', test acc ' in out[1]
    assert out[2].endswith(f'examples/sec on {d2l.try_gpu()}')


@needs_data
def test_the_coursework_reports_calls(capsys):
    # Report 001: load, train with the five-argument call, then evaluate on the "GPU" helper.
    batch_size = 64
    train_dataset, test_dataset = mu.load_data_fashion_mnist(batch_size)
    netwcuda = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    num_epochs = 1
    mu.train_ch6(netwcuda, train_dataset, test_dataset, num_epochs, 0.1)
    accuracy = mu.evaluate_accuracy_gpu(netwcuda, test_dataset)
    assert accuracy > 0.75
    assert mu.evaluate_accuracy(netwcuda, test_dataset) == pytest.approx(accuracy)
    assert 'examples/sec on' in capsys.readouterr().out
