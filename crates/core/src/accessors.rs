//! The accessor trio every Seawall middleware service has.

/// Implements `get_ref`, `get_mut` and `into_inner` for a middleware service whose wrapped
/// service is its field `inner` of type `S`, as tower's own middleware has them: one macro,
/// so that every layer's service answers alike.
///
/// ```
/// pub struct Counted<S> {
///     inner: S,
///     calls: u64,
/// }
/// seawall_core::inner_accessors!(impl[S] Counted<S>);
///
/// let mut counted = Counted { inner: "client", calls: 0 };
/// assert_eq!(*counted.get_ref(), "client");
/// *counted.get_mut() = "other";
/// assert_eq!(counted.into_inner(), "other");
/// ```
#[macro_export]
macro_rules! inner_accessors {
    (impl[$($generics:tt)*] $service:ty) => {
        impl<$($generics)*> $service {
            /// The wrapped service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The wrapped service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// Unwraps the wrapped service.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }
    };
}
