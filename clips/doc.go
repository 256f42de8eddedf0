// Package clips is the clip domain: game clips uploaded from the overlay,
// their media, likes, views and comments.
//
// So far it declares the persistence it consumes, Store, with the Clip,
// Comment and Event types; store/postgres and store/sqlite implement it.
// The REST API, uploads and media serving build on it. Nothing here starts
// goroutines.
package clips
