"""load_data_or_standin: real files when present, a labelled stand-in when they cannot be had,
and no waiting on a network that is not there."""
import dataclasses
import socket
import tempfile
import threading

import pytest

import my_utils as mu
from my_utils import standin


@pytest.fixture
def tmp_standins(tmp_path, monkeypatch):
    """Stand-ins go under this test's folder, not the machine's shared temporary folder."""
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
    (tmp_path / 'tmp').mkdir()
    return tmp_path / 'tmp' / 'my_utils_standin'


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the network is asked at all."""
    def asked(*args, **kwargs):
        raise AssertionError('the network was asked')
    monkeypatch.setattr(standin, 'network_available', asked)


def test_offline_uses_a_labelled_standin_without_asking_the_network(
        tmp_path, tmp_standins, no_network, monkeypatch, capsys):
    monkeypatch.setenv('MY_UTILS_OFFLINE', '1')
    train_iter, test_iter, source = mu.load_data_or_standin(
        'kmnist', 50, root=tmp_path / 'empty', standin_size=(120, 60))
    assert source.standin and source.how == 'stand-in'
    assert 'MY_UTILS_OFFLINE=1' in source.reason
    assert len(train_iter.dataset) == 120 and len(test_iter.dataset) == 60
    X, y = next(iter(train_iter))
    assert tuple(X.shape) == (50, 1, 28, 28)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [str(source)] and 'STAND-IN for KMNIST' in printed[0]
    assert not (tmp_path / 'empty' / 'KMNIST').exists()  # nothing fake in the real data folder


@pytest.mark.parametrize('name, title, shape', [('fashion_mnist', 'Fashion-MNIST', (1, 28, 28)),
                                                ('cifar10', 'CIFAR-10', (3, 32, 32))])
def test_every_set_has_a_standin(name, title, shape, tmp_path, tmp_standins, no_network,
                                 monkeypatch):
    monkeypatch.setenv('MY_UTILS_OFFLINE', '1')
    train_iter, _, source = mu.load_data_or_standin(name, 10, root=tmp_path, verbose=False,
                                                    standin_size=(30, 20))
    assert source.standin and source.title == title
    assert tuple(next(iter(train_iter))[0].shape[1:]) == shape


def test_real_files_on_disk_are_used(tmp_path, tmp_standins, no_network, monkeypatch):
    monkeypatch.setenv('MY_UTILS_OFFLINE', '1')
    mu.write_fake_kmnist(tmp_path, n_train=40, n_test=20)  # to the loader, files like the real ones
    train_iter, _, source = mu.load_data_or_standin('kmnist', 8, root=tmp_path, verbose=False)
    assert not source.standin and source.how == 'on disk'
    assert source.root == tmp_path / 'KMNIST' / 'raw'
    assert len(train_iter.dataset) == 40
    assert not tmp_standins.exists()


def test_damaged_files_raise_instead_of_a_standin(tmp_path, tmp_standins, monkeypatch):
    monkeypatch.setenv('MY_UTILS_OFFLINE', '1')
    raw = tmp_path / 'KMNIST' / 'raw'
    raw.mkdir(parents=True)
    (raw / 'train-images-idx3-ubyte').write_bytes(b'')
    with pytest.raises(mu.DataError):
        mu.load_data_or_standin('kmnist', 8, root=tmp_path, verbose=False)
    assert not tmp_standins.exists()


@pytest.mark.parametrize('name, args, error', [
    ('mnist', dict(batch_size=8), ValueError),
    ('kmnist', dict(batch_size=0), ValueError),
    ('kmnist', dict(batch_size=8, standin_size=(10,)), ValueError),
    ('kmnist', dict(batch_size=8, standin_seed=-1), ValueError),
    ('kmnist', dict(batch_size=8, download=True), TypeError)])
def test_bad_input_raises_before_anything_is_written(name, args, error, tmp_path, tmp_standins,
                                                     monkeypatch):
    monkeypatch.setenv('MY_UTILS_OFFLINE', '1')
    with pytest.raises(error):
        mu.load_data_or_standin(name, root=tmp_path, **args)
    assert not tmp_standins.exists() and not any(tmp_path.glob('KMNIST*'))


def test_without_network_answer_the_standin_says_so(tmp_path, tmp_standins, monkeypatch):
    monkeypatch.delenv('MY_UTILS_OFFLINE', raising=False)
    monkeypatch.setattr(standin, 'network_available', lambda url: False)
    _, _, source = mu.load_data_or_standin('kmnist', 8, root=tmp_path, verbose=False,
                                           standin_size=(20, 10))
    assert source.standin and 'did not answer' in source.reason


def test_a_failed_download_falls_back_to_a_standin(tmp_path, tmp_standins, monkeypatch):
    monkeypatch.delenv('MY_UTILS_OFFLINE', raising=False)
    monkeypatch.setattr(standin, 'network_available', lambda url: True)
    calls = []
    real = standin._SETS['kmnist'].loader

    def loader(*args, download, **kwargs):
        calls.append(download)
        if download:
            raise mu.DataError('KMNIST could not be loaded: downloading failed (no network?)')
        return real(*args, download=download, **kwargs)

    monkeypatch.setitem(standin._SETS, 'kmnist',
                        dataclasses.replace(standin._SETS['kmnist'], loader=loader))
    _, _, source = mu.load_data_or_standin('kmnist', 8, root=tmp_path, verbose=False,
                                           standin_size=(20, 10))
    assert calls == [False, True, False]  # on disk?, download, the stand-in
    assert source.standin and 'downloading failed' in source.reason


def test_network_check_gives_up_on_a_host_that_never_answers(monkeypatch):
    release = threading.Event()

    def hangs(*args, **kwargs):
        release.wait(30)  # a lookup or connect that hangs; let go at the end of the test
        raise OSError('gave up')

    monkeypatch.setattr(socket, 'create_connection', hangs)
    try:
        assert standin.network_available('http://example.invalid/data', timeout=0.2) is False
    finally:
        release.set()


def test_network_check_says_yes_when_the_host_answers(monkeypatch):
    seen = []

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def connects(address, timeout):
        seen.append(address)
        return Connection()

    monkeypatch.setattr(socket, 'create_connection', connects)
    assert standin.network_available('https://www.cs.toronto.edu/x.tar.gz') is True
    assert seen == [('www.cs.toronto.edu', 443)]
    with pytest.raises(ValueError):
        standin.network_available('not a url')


@pytest.mark.parametrize('value, expected', [('1', True), ('true', True), ('0', False), ('', False)])
def test_is_offline_reads_the_environment(value, expected, monkeypatch):
    monkeypatch.setenv('MY_UTILS_OFFLINE', value)
    assert standin.is_offline() is expected


def test_absent_files_are_downloaded_when_the_network_answers(tmp_path, tmp_standins, monkeypatch):
    monkeypatch.delenv('MY_UTILS_OFFLINE', raising=False)
    monkeypatch.setattr(standin, 'network_available', lambda url: True)
    real = standin._SETS['kmnist'].loader

    def loader(*args, root, download, **kwargs):
        if download:  # what a download leaves behind: the files in the data folder
            mu.write_fake_kmnist(root, n_train=30, n_test=10)
        return real(*args, root=root, download=download, **kwargs)

    monkeypatch.setitem(standin._SETS, 'kmnist',
                        dataclasses.replace(standin._SETS['kmnist'], loader=loader))
    train_iter, _, source = mu.load_data_or_standin('kmnist', 8, root=tmp_path, verbose=False)
    assert source.how == 'downloaded' and not source.standin
    assert str(source) == 'data: KMNIST, the real set (downloaded)'
    assert len(train_iter.dataset) == 30 and not tmp_standins.exists()
