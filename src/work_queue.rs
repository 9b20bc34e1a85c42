//! Workers that take items strictly in order from one shared queue.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `each(i, &items[i])` for every item on up to `jobs` scoped threads, each taking the
/// next item when it finishes its last: items start in their order, and a worker is never
/// idle while one waits. (A rayon `par_iter` splits the list in halves instead, so a second
/// worker starts in the middle of it.) Returns when every item is done.
pub fn in_order<T: Sync>(jobs: usize, items: &[T], each: impl Fn(usize, &T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len()).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                each(i, item);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_item_once_with_its_index() {
        let items: Vec<u32> = (0..50).collect();
        let done = Mutex::new(Vec::new());
        in_order(3, &items, |i, item| {
            assert_eq!(i as u32, *item);
            done.lock().unwrap().push(*item);
        });
        let mut done = done.into_inner().unwrap();
        done.sort_unstable();
        assert_eq!(done, items);
    }

    #[test]
    fn one_worker_takes_them_in_order() {
        let items: Vec<u32> = (0..50).collect();
        let done = Mutex::new(Vec::new());
        in_order(1, &items, |_, item| done.lock().unwrap().push(*item));
        assert_eq!(done.into_inner().unwrap(), items);
    }

    #[test]
    fn no_items_no_call() {
        in_order(4, &[] as &[u32], |_, _| panic!("called"));
    }
}
