package p2p

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ALPN protocol ids. They keep the client protocol and the peer protocol
// apart on one listener.
const (
	ALPNClient = "rustorium-client/1"
	ALPNPeer   = "rustorium-peer/1"
)

// ErrPeerKey: the remote's certificate is not a self-signed ed25519
// certificate, or its key is not the pinned one.
var ErrPeerKey = errors.New("p2p: peer key refused")

// Certificate returns a self-signed TLS certificate over an ed25519 key. The
// key is the identity; the certificate is only its TLS wrapping.
func Certificate(priv ed25519.PrivateKey) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rustorium"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"rustorium"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("p2p: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// certKey checks that raw is one self-signed ed25519 certificate and returns
// its key.
func certKey(raw [][]byte) (ed25519.PublicKey, error) {
	if len(raw) != 1 {
		return nil, fmt.Errorf("%w: want exactly one certificate, got %d", ErrPeerKey, len(raw))
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPeerKey, err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an ed25519 key", ErrPeerKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: not self-signed: %v", ErrPeerKey, err)
	}
	return pub, nil
}

// pinnedVerifier returns a VerifyPeerCertificate that accepts a self-signed
// ed25519 certificate whose key is one of pinned, or any such certificate
// when pinned is empty.
func pinnedVerifier(pinned []ed25519.PublicKey) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		pub, err := certKey(raw)
		if err != nil {
			return err
		}
		if len(pinned) == 0 {
			return nil
		}
		for _, k := range pinned {
			if bytes.Equal(k, pub) {
				return nil
			}
		}
		return fmt.Errorf("%w: %x is not pinned", ErrPeerKey, []byte(pub))
	}
}

// RemoteKey returns the ed25519 key of the remote's verified certificate, or
// nil when it sent none.
func RemoteKey(cs tls.ConnectionState) ed25519.PublicKey {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	pub, _ := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	return pub
}
