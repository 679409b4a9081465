// HTTP-DISC: the server settles the disconnect signal once: settling consumes the notifier.
use rgi::Disconnect;

fn main() {
    let (_signal, notifier) = Disconnect::pair();
    notifier.completed();
    notifier.client_gone();
}
