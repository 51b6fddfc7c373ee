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


# Every name the book's chapters 2 to 7 (v0.17.6, PyTorch) define with #@save or call as d2l.<name>,
# with d2l/torch.py's parameters: my_utils keeps them in that order with those defaults (it may add
# keyword-only ones, and defaults where d2l has none: train_ch6's device).
D2L_CH2_TO_7 = {
    'use_svg_display': '', 'set_figsize': 'figsize=(3.5, 2.5)',
    'set_axes': 'axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend',
    'plot': "X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale='linear', "
            "yscale='linear', fmts=('-', 'm--', 'g-.', 'r:'), figsize=(3.5, 2.5), axes=None",
    'Timer': '', 'synthetic_data': 'w, b, num_examples', 'linreg': 'X, w, b',
    'squared_loss': 'y_hat, y', 'sgd': 'params, lr, batch_size',
    'load_array': 'data_arrays, batch_size, is_train=True', 'get_fashion_mnist_labels': 'labels',
    'show_images': 'imgs, num_rows, num_cols, titles=None, scale=1.5', 'get_dataloader_workers': '',
    'load_data_fashion_mnist': 'batch_size, resize=None', 'accuracy': 'y_hat, y',
    'evaluate_accuracy': 'net, data_iter', 'Accumulator': 'n',
    'train_epoch_ch3': 'net, train_iter, loss, updater',
    'Animator': "xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale='linear', "
                "yscale='linear', fmts=('-', 'm--', 'g-.', 'r:'), nrows=1, ncols=1, figsize=(3.5, 2.5)",
    'train_ch3': 'net, train_iter, test_iter, loss, num_epochs, updater',
    'predict_ch3': 'net, test_iter, n=6', 'evaluate_loss': 'net, data_iter, loss',
    'download': "name, cache_dir=os.path.join('..', 'data')", 'download_extract': 'name, folder=None',
    'download_all': '', 'try_gpu': 'i=0', 'try_all_gpus': '', 'corr2d': 'X, K',
    'evaluate_accuracy_gpu': 'net, data_iter, device=None',
    'train_ch6': 'net, train_iter, test_iter, num_epochs, lr, device',
    'Residual': 'input_channels, num_channels, use_1x1conv=False, strides=1',
}
D2L_CH2_TO_7_VALUES = ['DATA_HUB', 'DATA_URL', 'plt', 'abs', 'arange', 'argmax', 'astype', 'concat',
                       'exp', 'float32', 'log', 'matmul', 'normal', 'numpy', 'ones', 'reduce_sum',
                       'reshape', 'size', 'stack', 'tensor', 'transpose', 'zeros']


@pytest.mark.parametrize('name', sorted(D2L_CH2_TO_7))
def test_every_helper_of_chapters_2_to_7_has_d2ls_signature(name):
    import inspect
    fn = getattr(d2l, name)
    ours = [p for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    theirs = inspect.signature(eval(f'lambda {D2L_CH2_TO_7[name]}: 0', {'os': os})).parameters
    assert [p.name for p in ours[:len(theirs)]] == list(theirs)
    for p in theirs.values():
        mine = ours[list(theirs).index(p.name)]
        assert p.default is p.empty or mine.default == p.default, (p.name, mine.default, p.default)
    # anything we add after d2l's parameters has a default, so d2l's calls still work
    assert all(p.default is not p.empty for p in ours[len(theirs):])


def test_every_value_of_chapters_2_to_7_exists():
    assert [n for n in D2L_CH2_TO_7_VALUES if not hasattr(d2l, n)] == []


# ---- the d2l helpers that my_utils/book.py adds: evaluate_loss, DATA_HUB/download, Residual ----

import functools
import hashlib
import io
import urllib.error
import urllib.request
import zipfile

import numpy as np
from torch.nn import functional as F


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError('no network (simulated by the test)')
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)


def _serve(monkeypatch, content):
    """urlopen answers with ``content`` (what a download would get), and counts its calls."""
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(content)
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen)
    return calls


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_evaluate_loss_is_the_mean_per_example_for_every_reduction(reduction):
    X, y = torch.randn(25, 3), torch.randn(25)  # 25 = batches of 10, 10 and 5
    net = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5))
    expected = ((net[0](X) - y.reshape(-1, 1)) ** 2).mean().item()
    got = d2l.evaluate_loss(net, d2l.load_array((X, y), 10, is_train=False),
                            nn.MSELoss(reduction=reduction))
    assert got == pytest.approx(expected, rel=1e-5)  # dropout off: evaluated in eval()
    assert net.training  # and the mode is given back


def test_evaluate_loss_takes_functions_and_classification():
    w, b = torch.ones(2, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    X, y = torch.ones(4, 2), torch.full((4, 1), 3.0)
    loss = d2l.evaluate_loss(lambda X: d2l.linreg(X, w, b), d2l.load_array((X, y), 2), d2l.squared_loss)
    assert loss == pytest.approx(0.5) and w.grad is None  # no graph was built
    net = nn.Linear(4, 3)
    X, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = F.cross_entropy(net(X), y).item()
    assert d2l.evaluate_loss(net, d2l.load_array((X, y), 4), nn.CrossEntropyLoss()) == pytest.approx(expected)


def test_evaluate_loss_on_an_empty_iterator():
    with pytest.raises(ValueError, match='evaluate_loss: data_iter gave no examples'):
        d2l.evaluate_loss(nn.Linear(2, 1), [], nn.MSELoss())


def test_data_hub_holds_the_kaggle_files():
    assert d2l.DATA_URL == 'http://d2l-data.s3-accelerate.amazonaws.com/'
    assert d2l.DATA_HUB['kaggle_house_train'] == (
        d2l.DATA_URL + 'kaggle_house_pred_train.csv', '585e9cc93e70b39160e7921475f9bcd7d31219ce')
    assert d2l.DATA_HUB['kaggle_house_test'][1] == 'fa19780a7b011d9b009e8bff8e99922a8ee2eb90'


def test_download_uses_a_file_already_in_the_cache(monkeypatch, tmp_path, capsys):
    content = b'Id,SalePrice\n1,200000\n'
    monkeypatch.setitem(d2l.DATA_HUB, 'houses', (d2l.DATA_URL + 'houses.csv',
                                                 hashlib.sha1(content).hexdigest()))
    (tmp_path / 'houses.csv').write_bytes(content)
    _no_network(monkeypatch)
    assert d2l.download('houses', cache_dir=str(tmp_path)) == str(tmp_path / 'houses.csv')
    assert capsys.readouterr().out == ''  # no "Downloading ..." line: the sha1 matched


def test_download_prints_d2ls_line_and_writes_the_file(monkeypatch, tmp_path, capsys):
    content = b'a,b\n1,2\n'
    url = d2l.DATA_URL + 'ab.csv'
    monkeypatch.setitem(d2l.DATA_HUB, 'ab', (url, hashlib.sha1(content).hexdigest()))
    calls = _serve(monkeypatch, content)
    cache = tmp_path / 'new' / 'data'
    fname = d2l.download('ab', cache_dir=str(cache))
    assert fname == str(cache / 'ab.csv') and (cache / 'ab.csv').read_bytes() == content
    assert capsys.readouterr().out == f'Downloading {fname} from {url}...\n' and calls == [url]
    assert sorted(p.name for p in cache.iterdir()) == ['ab.csv']  # no .part left
    d2l.download('ab', cache_dir=str(cache))
    assert calls == [url]  # the second call hit the cache


def test_download_without_network_says_where_to_put_the_file(monkeypatch, tmp_path):
    _no_network(monkeypatch)
    cache = tmp_path / 'data'
    with pytest.raises(d2l.DataError) as info:
        d2l.download('kaggle_house_train', cache_dir=str(cache))
    msg = str(info.value)
    assert 'downloading http://d2l-data.s3-accelerate.amazonaws.com/kaggle_house_pred_train.csv ' \
           'failed (no network? URLError' in msg
    assert f'put it at {cache / "kaggle_house_pred_train.csv"}' in msg
    assert '585e9cc93e70b39160e7921475f9bcd7d31219ce' in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert (info.value.dataset, info.value.folder, info.value.missing) == (
        'kaggle_house_train', cache, ('kaggle_house_pred_train.csv',))
    assert not cache.exists()  # nothing was created
    (cache).mkdir()
    (cache / 'kaggle_house_pred_train.csv').write_text('not the real file')
    with pytest.raises(d2l.DataError, match='the file there now has another sha1') as info:
        d2l.download('kaggle_house_train', cache_dir=str(cache))
    assert info.value.missing == () and list(info.value.problems) == ['kaggle_house_pred_train.csv']


def test_download_mistakes(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"'kaggle_house' is not in DATA_HUB \(it holds 'kaggle_house_train'"):
        d2l.download('kaggle_house')
    (tmp_path / 'file').write_text('')
    with pytest.raises(d2l.DataError, match='is a file, not a folder'):
        d2l.download('kaggle_house_train', cache_dir=str(tmp_path / 'file'))
    monkeypatch.setitem(d2l.DATA_HUB, 'ab', (d2l.DATA_URL + 'ab.csv', '0' * 40))
    _serve(monkeypatch, b'<html>proxy error</html>')
    with pytest.raises(d2l.DataError, match='does not have sha1 0000'):
        d2l.download('ab', cache_dir=str(tmp_path / 'data'))
    assert not (tmp_path / 'data' / 'ab.csv').exists()


def test_download_extract_and_download_all(monkeypatch, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        z.writestr('pack/hello.txt', 'hi')
    content = buffer.getvalue()
    (tmp_path / 'work').mkdir()
    monkeypatch.chdir(tmp_path / 'work')  # the default cache_dir is ../data
    cache = tmp_path / 'data'
    import my_utils.book
    hub = {}  # download_all fetches every entry: only these two
    monkeypatch.setattr(d2l, 'DATA_HUB', hub)
    monkeypatch.setattr(my_utils.book, 'DATA_HUB', hub)
    d2l.DATA_HUB['pack'] = (d2l.DATA_URL + 'pack.zip', hashlib.sha1(content).hexdigest())
    d2l.DATA_HUB['csv'] = (d2l.DATA_URL + 'c.csv', hashlib.sha1(content).hexdigest())
    _serve(monkeypatch, content)
    folder = d2l.download_extract('pack', 'pack')
    assert folder == os.path.join('..', 'data', 'pack') and (cache / 'pack' / 'hello.txt').read_text() == 'hi'
    with pytest.raises(ValueError, match=r"Only zip/tar files can be extracted; 'csv' is a .csv file"):
        d2l.download_extract('csv')
    d2l.download_all()
    assert sorted(p.name for p in cache.iterdir()) == ['c.csv', 'pack', 'pack.zip']


def test_residual_shapes_as_in_the_book():
    blk = d2l.Residual(3, 3)
    X = torch.rand(4, 3, 6, 6)
    assert blk(X).shape == (4, 3, 6, 6)
    blk = d2l.Residual(3, 6, use_1x1conv=True, strides=2)
    assert blk(X).shape == (4, 6, 3, 3)


@pytest.mark.parametrize('args, kwargs, message', [
    ((3, 6), {}, 'Residual(3, 6, strides=1) needs use_1x1conv=True: its output (6 channels'),
    ((3, 3), dict(strides=2), 'Residual(3, 3, strides=2) needs use_1x1conv=True'),
    ((0, 3), {}, 'input_channels must be a positive int, got 0'),
    ((3, 3.0), {}, 'num_channels must be a positive int, got 3.0'),
])
def test_residual_mistakes_fail_when_the_block_is_built(args, kwargs, message):
    with pytest.raises(ValueError) as info:
        d2l.Residual(*args, **kwargs)
    assert message in str(info.value)


def test_residual_says_what_input_it_expects():
    with pytest.raises(ValueError, match=r'Residual\(3, 3\) got an input of shape \(4, 1, 6, 6\): it '
                                         r'expects \(batch, 3, height, width\)'):
        d2l.Residual(3, 3)(torch.rand(4, 1, 6, 6))


# ---- the book's chapters 3, 4, 6 and 7, run as written (epochs lowered, data subsets) ----

@pytest.fixture
def small_fashion(monkeypatch):
    """d2l.load_data_fashion_mnist as the book calls it, on the first 1,024 / 512 examples and in
    this process, so that each section trains for a second, not minutes."""
    if not os.environ.get('MY_UTILS_DATA'):
        pytest.skip('real Fashion-MNIST not available: set MY_UTILS_DATA')
    monkeypatch.setattr(d2l, 'load_data_fashion_mnist', functools.partial(
        mu.datasets.load_data_fashion_mnist, n_train=1024, n_test=512, num_workers=0))
    yield
    d2l.plt.close('all')


def test_ch3_linear_regression_concise(capsys):
    true_w = d2l.tensor([2, -3.4])
    true_b = 4.2
    features, labels = d2l.synthetic_data(true_w, true_b, 1000)
    batch_size = 10
    data_iter = d2l.load_array((features, labels), batch_size)
    next(iter(data_iter))
    net = nn.Sequential(nn.Linear(2, 1))
    net[0].weight.data.normal_(0, 0.01)
    net[0].bias.data.fill_(0)
    loss = nn.MSELoss()
    trainer = torch.optim.SGD(net.parameters(), lr=0.03)
    num_epochs = 3
    for epoch in range(num_epochs):
        for X, y in data_iter:
            l = loss(net(X), y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
        l = loss(net(features), labels)
        print(f'epoch {epoch + 1}, loss {l:f}')
    assert capsys.readouterr().out.startswith('epoch 1, loss ')
    assert (net[0].weight.data.reshape(true_w.shape) - true_w).abs().max() < 0.05


def test_ch3_image_classification_dataset(small_fashion):
    import torchvision
    from torchvision import transforms
    d2l.use_svg_display()
    trans = transforms.ToTensor()
    root = os.environ['MY_UTILS_DATA']  # the book says "../data"
    mnist_train = torchvision.datasets.FashionMNIST(root=root, train=True, transform=trans, download=True)
    mnist_test = torchvision.datasets.FashionMNIST(root=root, train=False, transform=trans, download=True)
    assert (len(mnist_train), len(mnist_test)) == (60000, 10000)
    assert mnist_train[0][0].shape == (1, 28, 28)
    X, y = next(iter(torch.utils.data.DataLoader(mnist_train, batch_size=18)))
    axes = d2l.show_images(X.reshape(18, 28, 28), 2, 9, titles=d2l.get_fashion_mnist_labels(y))
    assert axes[0].get_title() == 'ankle boot'
    batch_size = 256
    train_iter = torch.utils.data.DataLoader(mnist_train, batch_size, shuffle=True,
                                             num_workers=d2l.get_dataloader_workers())
    timer = d2l.Timer()
    for X, y in train_iter:
        break  # the book reads the whole epoch; one batch shows the call works
    assert f'{timer.stop():.2f} sec'.endswith(' sec')
    train_iter, test_iter = d2l.load_data_fashion_mnist(32, resize=64)
    for X, y in train_iter:
        assert X.shape == (32, 1, 64, 64) and X.dtype == torch.float32
        assert y.shape == (32,) and y.dtype == torch.int64
        break


def test_ch3_softmax_regression_scratch(small_fashion):
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    num_inputs, num_outputs = 784, 10
    W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
    b = torch.zeros(num_outputs, requires_grad=True)

    def softmax(X):
        X_exp = d2l.exp(X)
        partition = d2l.reduce_sum(X_exp, 1, keepdim=True)
        return X_exp / partition

    def net(X):
        return softmax(d2l.matmul(d2l.reshape(X, (-1, W.shape[0])), W) + b)

    def cross_entropy(y_hat, y):
        return - d2l.log(y_hat[range(len(y_hat)), y])

    y = d2l.tensor([0, 2])
    y_hat = d2l.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    assert d2l.accuracy(y_hat, y) / len(y) == 0.5
    assert 0 <= d2l.evaluate_accuracy(net, test_iter) <= 1
    lr = 0.1

    def updater(batch_size):
        return d2l.sgd([W, b], lr, batch_size)

    num_epochs = 2
    d2l.train_ch3(net, train_iter, test_iter, cross_entropy, num_epochs, updater)
    d2l.predict_ch3(net, test_iter)
    assert d2l.evaluate_accuracy(net, test_iter) > 0.5


def test_ch4_mlp_scratch_and_dropout(small_fashion):
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    num_inputs, num_outputs, num_hiddens = 784, 10, 256
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens, requires_grad=True) * 0.01)
    b1 = nn.Parameter(torch.zeros(num_hiddens, requires_grad=True))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs, requires_grad=True) * 0.01)
    b2 = nn.Parameter(torch.zeros(num_outputs, requires_grad=True))
    params = [W1, b1, W2, b2]

    def relu(X):
        a = torch.zeros_like(X)
        return torch.max(X, a)

    def net(X):
        X = d2l.reshape(X, (-1, num_inputs))
        H = relu(X @ W1 + b1)
        return (H @ W2 + b2)

    loss = nn.CrossEntropyLoss(reduction='none')
    num_epochs, lr = 1, 0.1
    updater = torch.optim.SGD(params, lr=lr)
    d2l.train_ch3(net, train_iter, test_iter, loss, num_epochs, updater)
    d2l.predict_ch3(net, test_iter)

    dropout1, dropout2 = 0.2, 0.5
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(dropout1),
                        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(dropout2), nn.Linear(256, 10))

    def init_weights(m):
        if type(m) == nn.Linear:
            nn.init.normal_(m.weight, std=0.01)

    net.apply(init_weights)
    lr = 0.5
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    d2l.train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)


def test_ch4_underfit_overfit(capsys):
    import math
    max_degree = 20
    n_train, n_test = 100, 100
    true_w = np.zeros(max_degree)
    true_w[0:4] = np.array([5, 1.2, -3.4, 5.6])
    features = np.random.normal(size=(n_train + n_test, 1))
    np.random.shuffle(features)
    poly_features = np.power(features, np.arange(max_degree).reshape(1, -1))
    for i in range(max_degree):
        poly_features[:, i] /= math.gamma(i + 1)
    labels = np.dot(poly_features, true_w)
    labels += np.random.normal(scale=0.1, size=labels.shape)
    true_w, features, poly_features, labels = [d2l.tensor(x, dtype=d2l.float32)
                                               for x in [true_w, features, poly_features, labels]]

    def train(train_features, test_features, train_labels, test_labels, num_epochs=400):
        loss = nn.MSELoss(reduction='none')
        input_shape = train_features.shape[-1]
        net = nn.Sequential(nn.Linear(input_shape, 1, bias=False))
        batch_size = min(10, train_labels.shape[0])
        train_iter = d2l.load_array((train_features, train_labels.reshape(-1, 1)), batch_size)
        test_iter = d2l.load_array((test_features, test_labels.reshape(-1, 1)), batch_size, is_train=False)
        trainer = torch.optim.SGD(net.parameters(), lr=0.01)
        animator = d2l.Animator(xlabel='epoch', ylabel='loss', yscale='log', xlim=[1, num_epochs],
                                ylim=[1e-3, 1e2], legend=['train', 'test'])
        for epoch in range(num_epochs):
            d2l.train_epoch_ch3(net, train_iter, loss, trainer)
            if epoch == 0 or (epoch + 1) % 20 == 0:
                animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, loss),
                                         d2l.evaluate_loss(net, test_iter, loss)))
        print('weight:', net[0].weight.data.numpy())
        return animator

    animator = train(poly_features[:n_train, :4], poly_features[n_train:, :4],
                     labels[:n_train], labels[n_train:], num_epochs=100)
    assert capsys.readouterr().out.startswith('weight: [[')
    assert animator.Y[1][-1] < animator.Y[1][0]  # the test loss fell
    train(poly_features[:n_train, :2], poly_features[n_train:, :2],
          labels[:n_train], labels[n_train:], num_epochs=20)


def test_ch4_weight_decay(capsys):
    n_train, n_test, num_inputs, batch_size = 20, 100, 200, 5
    true_w, true_b = d2l.ones((num_inputs, 1)) * 0.01, 0.05
    train_data = d2l.synthetic_data(true_w, true_b, n_train)
    train_iter = d2l.load_array(train_data, batch_size)
    test_data = d2l.synthetic_data(true_w, true_b, n_test)
    test_iter = d2l.load_array(test_data, batch_size, is_train=False)

    def init_params():
        w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        return [w, b]

    def l2_penalty(w):
        return torch.sum(w.pow(2)) / 2

    def train(lambd):
        w, b = init_params()
        net, loss = lambda X: d2l.linreg(X, w, b), d2l.squared_loss
        num_epochs, lr = 20, 0.003
        animator = d2l.Animator(xlabel='epochs', ylabel='loss', yscale='log',
                                xlim=[5, num_epochs], legend=['train', 'test'])
        for epoch in range(num_epochs):
            for X, y in train_iter:
                l = loss(net(X), y) + lambd * l2_penalty(w)
                l.sum().backward()
                d2l.sgd([w, b], lr, batch_size)
            if (epoch + 1) % 5 == 0:
                animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, loss),
                                         d2l.evaluate_loss(net, test_iter, loss)))
        print('L2 norm of w:', torch.norm(w).item())

    def train_concise(wd):
        net = nn.Sequential(nn.Linear(num_inputs, 1))
        for param in net.parameters():
            param.data.normal_()
        loss = nn.MSELoss(reduction='none')
        num_epochs, lr = 20, 0.003
        trainer = torch.optim.SGD([{"params": net[0].weight, 'weight_decay': wd},
                                   {"params": net[0].bias}], lr=lr)
        animator = d2l.Animator(xlabel='epochs', ylabel='loss', yscale='log',
                                xlim=[5, num_epochs], legend=['train', 'test'])
        for epoch in range(num_epochs):
            for X, y in train_iter:
                trainer.zero_grad()
                l = loss(net(X), y)
                l.mean().backward()
                trainer.step()
            if (epoch + 1) % 5 == 0:
                animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, loss),
                                         d2l.evaluate_loss(net, test_iter, loss)))
        print('L2 norm of w:', net[0].weight.norm().item())

    train(lambd=0)
    train(lambd=3)
    train_concise(0)
    train_concise(3)
    norms = [float(line.split(': ')[1]) for line in capsys.readouterr().out.splitlines()]
    assert len(norms) == 4 and norms[1] < norms[0] and norms[3] < norms[2]  # weight decay shrinks w


def test_ch4_kaggle_house_prices(monkeypatch, tmp_path, capsys):
    # The book reads the two csv files with pandas; here download() is fed a stand-in file from the
    # cache folder (no network), and the training code runs on tensors shaped like its features.
    content = b'Id,LotArea,SalePrice\n1,8450,208500\n2,9600,181500\n'
    monkeypatch.setitem(d2l.DATA_HUB, 'kaggle_house_train', (
        d2l.DATA_URL + 'kaggle_house_pred_train.csv', hashlib.sha1(content).hexdigest()))
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'kaggle_house_pred_train.csv').write_bytes(content)
    (tmp_path / 'work').mkdir()
    monkeypatch.chdir(tmp_path / 'work')
    _no_network(monkeypatch)
    assert d2l.download('kaggle_house_train') == os.path.join('..', 'data', 'kaggle_house_pred_train.csv')

    train_features = torch.randn(100, 8)
    train_labels = (train_features @ torch.rand(8, 1) * 3e4 + 1.8e5).abs() + 1
    loss = nn.MSELoss()
    in_features = train_features.shape[1]

    def get_net():
        return nn.Sequential(nn.Linear(in_features, 1))

    def log_rmse(net, features, labels):
        clipped_preds = torch.clamp(net(features), 1, float('inf'))
        rmse = torch.sqrt(loss(torch.log(clipped_preds), torch.log(labels)))
        return rmse.item()

    def train(net, train_features, train_labels, test_features, test_labels,
              num_epochs, learning_rate, weight_decay, batch_size):
        train_ls, test_ls = [], []
        train_iter = d2l.load_array((train_features, train_labels), batch_size)
        optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        for epoch in range(num_epochs):
            for X, y in train_iter:
                optimizer.zero_grad()
                l = loss(net(X), y)
                l.backward()
                optimizer.step()
            train_ls.append(log_rmse(net, train_features, train_labels))
            if test_labels is not None:
                test_ls.append(log_rmse(net, test_features, test_labels))
        return train_ls, test_ls

    def get_k_fold_data(k, i, X, y):
        assert k > 1
        fold_size = X.shape[0] // k
        X_train, y_train = None, None
        for j in range(k):
            idx = slice(j * fold_size, (j + 1) * fold_size)
            X_part, y_part = X[idx, :], y[idx]
            if j == i:
                X_valid, y_valid = X_part, y_part
            elif X_train is None:
                X_train, y_train = X_part, y_part
            else:
                X_train = d2l.concat([X_train, X_part], 0)
                y_train = d2l.concat([y_train, y_part], 0)
        return X_train, y_train, X_valid, y_valid

    def k_fold(k, X_train, y_train, num_epochs, learning_rate, weight_decay, batch_size):
        train_l_sum, valid_l_sum = 0, 0
        for i in range(k):
            data = get_k_fold_data(k, i, X_train, y_train)
            net = get_net()
            train_ls, valid_ls = train(net, *data, num_epochs, learning_rate, weight_decay, batch_size)
            train_l_sum += train_ls[-1]
            valid_l_sum += valid_ls[-1]
            if i == 0:
                d2l.plot(list(range(1, num_epochs + 1)), [train_ls, valid_ls], xlabel='epoch',
                         ylabel='rmse', xlim=[1, num_epochs], legend=['train', 'valid'], yscale='log')
            print(f'fold {i + 1}, train log rmse {float(train_ls[-1]):f}, '
                  f'valid log rmse {float(valid_ls[-1]):f}')
        return train_l_sum / k, valid_l_sum / k

    k, num_epochs, lr, weight_decay, batch_size = 5, 5, 5, 0, 64
    train_l, valid_l = k_fold(k, train_features, train_labels, num_epochs, lr, weight_decay, batch_size)
    print(f'{k}-fold validation: avg train log rmse: {float(train_l):f}, '
          f'avg valid log rmse: {float(valid_l):f}')
    net = get_net()
    train_ls, _ = train(net, train_features, train_labels, None, None, num_epochs, lr, weight_decay,
                        batch_size)
    d2l.plot(np.arange(1, num_epochs + 1), [train_ls], xlabel='epoch', ylabel='log rmse',
             xlim=[1, num_epochs], yscale='log')
    preds = d2l.numpy(net(train_features))
    assert preds.shape == (100, 1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('fold 1, train log rmse ') and out[5].startswith('5-fold validation')
    d2l.plt.close('all')


def test_ch6_conv_layer_learns_the_edge_kernel(capsys):
    X = d2l.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = d2l.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(d2l.corr2d(X, K), d2l.tensor([[19.0, 25.0], [37.0, 43.0]]))
    X = d2l.ones((6, 8))
    X[:, 2:6] = 0
    K = d2l.tensor([[1.0, -1.0]])
    Y = d2l.corr2d(X, K)
    assert d2l.corr2d(d2l.transpose(X), K).abs().sum() == 0
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i + 1}, loss {l.sum():.3f}')
    assert capsys.readouterr().out.count('epoch ') == 5
    assert d2l.reshape(conv2d.weight.data, (1, 2)).shape == (1, 2)

    def corr2d_multi_in(X, K):  # 6.4
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    X = d2l.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = d2l.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert torch.equal(corr2d_multi_in(X, K), d2l.tensor([[56.0, 72.0], [104.0, 120.0]]))


def test_ch7_resnet(small_fashion, capsys):
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(d2l.Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(d2l.Residual(num_channels, num_channels))
        return blk

    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))
    X = torch.rand(size=(1, 1, 224, 224))
    for layer in net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape:\t', X.shape)
    out = capsys.readouterr().out.splitlines()
    assert out[4] == 'Sequential output shape:\t torch.Size([1, 512, 7, 7])'
    assert out[-1] == 'Linear output shape:\t torch.Size([1, 10])'
    # The book trains 10 epochs at 96x96 with batch 256; one batch of 32 shows the calls work.
    with pytest.MonkeyPatch.context() as m:
        m.setattr(d2l, 'load_data_fashion_mnist', functools.partial(
            mu.datasets.load_data_fashion_mnist, n_train=32, n_test=32, num_workers=0))
        lr, num_epochs, batch_size = 0.05, 1, 32
        train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size, resize=96)
        d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f'training on {d2l.try_gpu()}' and out[1].startswith('loss ')
