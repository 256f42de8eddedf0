// Package feed is the social graph (follows) and the clip feeds built on
// it.
//
// So far it declares the persistence it consumes, Store, with the Follow
// type; store/postgres and store/sqlite implement it. Nothing here starts
// goroutines.
package feed
